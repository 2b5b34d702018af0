// Errors are values at boundaries: parsers and I/O return Result<T>, never abort.
// An Error carries one human-readable message that already names the file, the byte
// offset and what was expected; callers add context by prefixing, not by wrapping.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace shimmy {

struct Error {
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Error e) : v_(std::move(e)) {}      // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an error message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : err_(std::move(e.message)), failed_(true) {}  // NOLINT
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  Error error() const { return Error{err_}; }
  const std::string& message() const { return err_; }

 private:
  std::string err_;
  bool failed_ = false;
};

inline Error make_error(std::string msg) {
  return Error{std::move(msg)};
}

}  // namespace shimmy
