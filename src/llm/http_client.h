// A minimal HTTPS POST (and GET) over libcurl: one easy handle per call, so concurrent
// calls from several threads share nothing but curl's global state.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace kbrun::llm {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  double connect_timeout_s = 10;
  double total_timeout_s = 600;
};

struct HttpResponse {
  // Transport outcome: when !transport_ok no HTTP status was received.
  bool transport_ok = false;
  bool timed_out = false;       // connect or total timeout
  bool interrupted = false;     // kbrun::CancelRequested() aborted the transfer
  bool no_connection = false;   // no connection was made: refused, host not resolved, connect timeout
  std::string transport_error;  // curl's message
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased; last response only
  std::string body;
};

// Never throws for network trouble: the result says what happened.
HttpResponse HttpPost(const HttpRequest& request);
// The same as a GET (`body` is not sent).
HttpResponse HttpGet(const HttpRequest& request);

}  // namespace kbrun::llm
