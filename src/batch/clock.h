// Wall-clock timestamps for result files, logs and the timeline. Unix seconds
// (double) are what files store: easy to subtract, and comparable across machines.
#pragma once

#include <string>

namespace kbrun::batch {

double NowUnix();
// "2026-11-24T20:31:23.123Z" (UTC).
std::string IsoTime(double unix_seconds);

}  // namespace kbrun::batch
