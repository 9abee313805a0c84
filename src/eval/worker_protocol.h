// The worker protocol: what a worker, checker or profile process may say on fd 3 that the
// supervisor believes. Each process gets a fresh nonce in its request (which the worker
// deletes before the candidate loads); its answer is one line "result <nonce> <json>", and the
// checker's baselines one line each, "baseline <nonce> <name> <json>". Anything else that
// claims to be a result marks the run forged.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kbrun::eval {

// 128 random bits as 32 hex digits.
std::string MakeNonce();

// Accepts one line "result <nonce> <json>"; any other result line marks the run forged.
// True when the line claimed to be a result (counted in `lines`); `out` is set from the first
// line with the nonce whose JSON is an object.
bool ReadResultLine(const std::string& line, const std::string& nonce, int& lines, bool& forged,
                    std::optional<nlohmann::json>& out);

// Accepts "baseline <nonce> <name> <json>" (one per name, a name in `wanted`); true when the
// line was one. The checker writes them after its result line.
bool ReadBaselineLine(const std::string& line, const std::string& nonce, const std::vector<std::string>& wanted,
                      nlohmann::json& out);

}  // namespace kbrun::eval
