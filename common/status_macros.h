// Early-return helpers for absl::Status and absl::StatusOr<T>.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define BERT_CONCAT_INNER_(a, b) a##b
#define BERT_CONCAT_(a, b) BERT_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` is not OK.
#define BERT_RETURN_IF_ERROR(expr)                \
  do {                                            \
    ::absl::Status bert_status_ = (expr);         \
    if (!bert_status_.ok()) return bert_status_;  \
  } while (false)

// `BERT_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a StatusOr, or
// returns its error.
#define BERT_ASSIGN_OR_RETURN(lhs, expr) \
  BERT_ASSIGN_OR_RETURN_IMPL_(BERT_CONCAT_(bert_statusor_, __LINE__), lhs, expr)
#define BERT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()
