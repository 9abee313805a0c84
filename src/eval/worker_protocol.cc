#include "eval/worker_protocol.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "util/text.h"

namespace kbrun::eval {

using nlohmann::json;

// Accepts one line "result <nonce> <json>"; any other result line marks the run forged.
bool ReadResultLine(const std::string& line, const std::string& nonce, int& lines, bool& forged,
                    std::optional<json>& out) {
  if (!StartsWith(line, "result")) return false;
  ++lines;
  const std::string prefix = "result " + nonce + " ";
  if (!StartsWith(line, prefix) || lines > 1) {
    forged = true;
    return true;
  }
  auto j = json::parse(line.substr(prefix.size()), nullptr, false);
  if (!j.is_discarded() && j.is_object()) out = j;
  return true;
}

// Accepts "baseline <nonce> <name> <json>" (one per name, a name --baseline asked for); true
// when the line was one. The checker writes them after its result line.
bool ReadBaselineLine(const std::string& line, const std::string& nonce, const std::vector<std::string>& wanted,
                      json& out) {
  const std::string prefix = "baseline " + nonce + " ";
  if (!StartsWith(line, prefix)) return false;
  std::string rest = line.substr(prefix.size());
  size_t space = rest.find(' ');
  if (space == std::string::npos) return true;
  std::string name = rest.substr(0, space);
  if (std::find(wanted.begin(), wanted.end(), name) == wanted.end() || out.contains(name)) return true;
  auto j = json::parse(rest.substr(space + 1), nullptr, false);
  if (!j.is_discarded() && j.is_object()) out[name] = j;
  return true;
}

std::string MakeNonce() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}{:08x}{:08x}", rd(), rd(), rd(), rd());
}

}  // namespace kbrun::eval
