// Test helper: run the kbrun binary through the shell and keep what it prints on stdout.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace kbrun {

struct Ran {
  int exit_code;
  std::string out;
};

// `kbrun ARGS` (ARGS split and quoted by the shell): its exit code and stdout; stderr is dropped.
inline Ran KbrunStdout(const std::string& args) {
  std::string command = std::string(KBRUN_BINARY) + " " + args + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  size_t got;
  while ((got = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, got);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace kbrun
