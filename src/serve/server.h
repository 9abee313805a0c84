// The HTTP side of `kbrun serve` (cpp-httplib): bearer-token auth, the /v1/evaluations
// endpoints and /metrics over an EvalService (docs/SERVE.md).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "serve/service.h"

namespace kbrun::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string token;                // every request needs "Authorization: Bearer <token>"
  size_t max_body_bytes = 1 << 20;  // larger request bodies: 413
};

// True when `a` equals `b`, in time that depends on their lengths only.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

// Binds, then serves until `stop()` returns true (checked every 100 ms). Returns an empty
// string when it served and stopped, else why it could not listen.
std::string Serve(EvalService& service, const ServerOptions& options, const std::function<bool()>& stop);

}  // namespace kbrun::serve
