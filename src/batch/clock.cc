#include "batch/clock.h"

#include <chrono>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

namespace kbrun::batch {

double NowUnix() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string IsoTime(double unix_seconds) {
  auto whole = static_cast<std::time_t>(std::floor(unix_seconds));
  int ms = static_cast<int>((unix_seconds - static_cast<double>(whole)) * 1000);
  std::tm tm{};
  gmtime_r(&whole, &tm);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

}  // namespace kbrun::batch
