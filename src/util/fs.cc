#include "util/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace kbrun {

namespace {
std::string RandomSuffix() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  return fmt::format("{}-{:08x}-{}", getpid(), rd(), counter++);
}

void WriteAll(int fd, const std::string& content, const fs::path& path) {
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(fmt::format("write {}: {}", path.string(), strerror(errno)));
    }
    off += static_cast<size_t>(n);
  }
}
}  // namespace

void WriteFileAtomic(const fs::path& path, const std::string& content) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  fs::path tmp = path;
  tmp += ".tmp-" + RandomSuffix();
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("create {}: {}", tmp.string(), strerror(errno)));
  try {
    WriteAll(fd, content, tmp);
    fsync(fd);
  } catch (...) {
    close(fd);
    unlink(tmp.c_str());
    throw;
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    throw std::runtime_error(fmt::format("rename to {}: {}", path.string(), strerror(err)));
  }
}

std::optional<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ReadFileOrThrow(const fs::path& path) {
  auto content = ReadFile(path);
  if (!content) throw std::runtime_error(fmt::format("cannot read {}", path.string()));
  return *content;
}

void AppendLine(const fs::path& path, const std::string& line) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("open {}: {}", path.string(), strerror(errno)));
  std::string with_nl = line + "\n";
  try {
    WriteAll(fd, with_nl, path);
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
}

fs::path MakeUniqueDir(const fs::path& parent, const std::string& prefix) {
  fs::create_directories(parent);
  for (int i = 0; i < 100; ++i) {
    fs::path dir = parent / (prefix + RandomSuffix());
    if (mkdir(dir.c_str(), 0700) == 0) return dir;
    if (errno != EEXIST) throw std::runtime_error(fmt::format("mkdir {}: {}", dir.string(), strerror(errno)));
  }
  throw std::runtime_error("cannot create a unique directory under " + parent.string());
}

fs::path ExecutableDir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

}  // namespace kbrun
