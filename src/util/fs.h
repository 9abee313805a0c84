// Filesystem helpers. Everything kbrun keeps is written atomically
// (temporary file, fsync, rename), so a crash never leaves half a file.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace kbrun {

namespace fs = std::filesystem;

void WriteFileAtomic(const fs::path& path, const std::string& content);
std::optional<std::string> ReadFile(const fs::path& path);
// Reads a file or throws std::runtime_error naming it.
std::string ReadFileOrThrow(const fs::path& path);
// Appends one line (a newline is added) with O_APPEND: safe for concurrent writers.
void AppendLine(const fs::path& path, const std::string& line);
// A fresh private directory under `parent` (created 0700).
fs::path MakeUniqueDir(const fs::path& parent, const std::string& prefix);
// Directory of the running executable.
fs::path ExecutableDir();

}  // namespace kbrun
