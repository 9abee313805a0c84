#include "serve/server.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

namespace kbrun::serve {

using nlohmann::json;

namespace {

void JsonReply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

void ErrorReply(httplib::Response& res, int status, const std::string& message) {
  JsonReply(res, status, {{"error", message}});
}

}  // namespace

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  // Every byte of `a` is compared (against `b` cyclically) whatever matches: the time
  // depends on the lengths only, never on where the first difference is.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  if (b.empty()) return a.empty();
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % b.size()]);
  return diff == 0;
}

std::string Serve(EvalService& service, const ServerOptions& o, const std::function<bool()>& stop) {
  httplib::Server svr;
  svr.new_task_queue = [] { return new httplib::ThreadPool(16); };
  svr.set_payload_max_length(o.max_body_bytes);
  svr.set_keep_alive_max_count(100);

  const std::string expected = "Bearer " + o.token;
  svr.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (ConstantTimeEquals(req.get_header_value("Authorization"), expected)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.set_header("WWW-Authenticate", "Bearer");
    ErrorReply(res, 401, req.has_header("Authorization") ? "invalid token" : "missing Authorization: Bearer <token>");
    return httplib::Server::HandlerResponse::Handled;
  });
  // Statuses httplib answers itself (404 no route, 413 body too large, ...) get a JSON body too.
  svr.set_error_handler([&](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = res.status == 413
                              ? fmt::format("request body over {} bytes (--max-body-bytes)", o.max_body_bytes)
                          : res.status == 404 ? "not found"
                                              : fmt::format("HTTP {}", res.status);
    ErrorReply(res, res.status, message);
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {}
    ErrorReply(res, 500, "internal error: " + what);
  });

  svr.Post("/v1/evaluations", [&](const httplib::Request& req, httplib::Response& res) {
    json body;
    try {
      body = json::parse(req.body);
    } catch (const json::parse_error& e) {
      ErrorReply(res, 400, fmt::format("body is not valid JSON: {}", e.what()));
      return;
    }
    if (!body.is_object()) return ErrorReply(res, 400, "body must be a JSON object {problem, code, options}");
    for (const auto& [key, v] : body.items()) {
      if (key != "problem" && key != "code" && key != "options") {
        return ErrorReply(res, 400, fmt::format("unknown field '{}' (allowed: problem, code, options)", key));
      }
    }
    for (const char* field : {"problem", "code"}) {
      if (!body.contains(field) || !body[field].is_string() || body[field].get<std::string>().empty()) {
        return ErrorReply(res, 400,
                          fmt::format("'{}' must be a non-empty string (the {} source)", field,
                                      std::string(field) == "code" ? "candidate's" : "problem's"));
      }
    }
    json options = body.value("options", json::object());
    SubmitOutcome out = service.Submit(body["problem"], body["code"], options);
    if (out.http_status != 202) return ErrorReply(res, out.http_status, out.error);
    res.set_header("Location", "/v1/evaluations/" + out.id);
    JsonReply(res, 202, {{"id", out.id}});
  });
  svr.Get(R"(/v1/evaluations/([^/]+))", [&](const httplib::Request& req, httplib::Response& res) {
    std::string id = req.matches[1];
    auto doc = service.Get(id);
    if (!doc) return ErrorReply(res, 404, fmt::format("no evaluation with id '{}'", id));
    JsonReply(res, 200, *doc);
  });
  svr.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(service.Metrics(), "text/plain; version=0.0.4");
  });

  if (!svr.bind_to_port(o.host, o.port)) return fmt::format("cannot listen on {}:{}", o.host, o.port);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done && !stop()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    svr.stop();
  });
  fmt::print(stderr, "kbrun serve: listening on {}:{}\n", o.host, o.port);
  std::fflush(stderr);
  svr.listen_after_bind();
  done = true;
  watcher.join();
  return "";
}

}  // namespace kbrun::serve
