// A throwaway CA, server certificate (for 127.0.0.1/localhost) and client
// certificate, made with the openssl CLI at test time.
#pragma once

#include <cstdlib>
#include <string>

namespace bert::server::testing {

struct TestPki {
  std::string ca_cert, server_cert, server_key, client_cert, client_key;
};

// Returns false when openssl is missing or fails.
inline bool MakeTestPki(const std::string& dir, TestPki* pki) {
  const std::string script = "set -e; cd '" + dir + "'; " +
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem 2>/dev/null; "
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext; "
      "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null; "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem 2>/dev/null; "
      "openssl req -newkey rsa:2048 -nodes -subj /CN=agent-1 -keyout client.key -out client.csr 2>/dev/null; "
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem 2>/dev/null";
  if (std::system(("bash -c \"" + script + "\"").c_str()) != 0) return false;
  pki->ca_cert = dir + "/ca.pem";
  pki->server_cert = dir + "/server.pem";
  pki->server_key = dir + "/server.key";
  pki->client_cert = dir + "/client.pem";
  pki->client_key = dir + "/client.key";
  return true;
}

}  // namespace bert::server::testing
