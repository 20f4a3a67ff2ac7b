#include "data/doc_hash.h"

#include <openssl/evp.h>

namespace bert::data {

DocHash HashDocument(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  DocHash h;
  std::memcpy(&h.lo, digest, 8);
  std::memcpy(&h.hi, digest + 8, 8);
  return h;
}

}  // namespace bert::data
