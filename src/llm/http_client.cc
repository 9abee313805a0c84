#include "llm/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <stdexcept>

#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::llm {
namespace {

// Responses are a few hundred KB at most; anything far larger is a misbehaving server.
constexpr size_t kMaxBodyBytes = 256u << 20;

void GlobalInitOnce() {
  // curl_global_init is not thread-safe: run it exactly once, before any handle exists.
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("curl_global_init failed");
  });
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  size_t n = size * count;
  if (body->size() + n > kMaxBodyBytes) return 0;  // makes curl fail with CURLE_WRITE_ERROR
  body->append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  size_t n = size * count;
  std::string line(data, n);
  // A new status line starts a new response (after "100 Continue" or a redirect).
  if (StartsWith(line, "HTTP/")) {
    headers->clear();
    return n;
  }
  size_t colon = line.find(':');
  if (colon != std::string::npos) (*headers)[ToLower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  return n;
}

int OnProgress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return CancelRequested() ? 1 : 0;  // non-zero aborts the transfer
}

}  // namespace

namespace {

HttpResponse Perform(const HttpRequest& request, bool post) {
  GlobalInitOnce();
  HttpResponse response;
  CURL* curl = curl_easy_init();
  if (!curl) {
    response.transport_error = "curl_easy_init failed";
    return response;
  }
  curl_slist* header_list = nullptr;
  for (const auto& h : request.headers) header_list = curl_slist_append(header_list, h.c_str());
  // Without this curl sends "Expect: 100-continue" for large bodies and may wait a second for it.
  header_list = curl_slist_append(header_list, "Expect:");

  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
  if (post) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max(1.0, request.connect_timeout_s * 1000)));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max(1.0, request.total_timeout_s * 1000)));
  // Signals and threads do not mix: without this, curl's DNS timeouts use SIGALRM.
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // any encoding curl can decode
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "kbrun/" KBRUN_VERSION);

  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    response.transport_ok = true;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  } else {
    response.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    response.interrupted = rc == CURLE_ABORTED_BY_CALLBACK;
    curl_off_t connect_us = 0;
    curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &connect_us);
    response.no_connection = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                             rc == CURLE_COULDNT_RESOLVE_PROXY || (response.timed_out && connect_us == 0);
    response.transport_error = error_buffer[0] ? error_buffer : curl_easy_strerror(rc);
  }
  curl_slist_free_all(header_list);
  curl_easy_cleanup(curl);
  return response;
}

}  // namespace

HttpResponse HttpPost(const HttpRequest& request) { return Perform(request, true); }

HttpResponse HttpGet(const HttpRequest& request) { return Perform(request, false); }

}  // namespace kbrun::llm
