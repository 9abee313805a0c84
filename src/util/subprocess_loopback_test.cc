// isolate_network with loopback_up: 127.0.0.1 works inside the namespace (ncu needs it),
// and without it the namespace's loopback stays down.
#include <gtest/gtest.h>

#include "util/subprocess.h"

namespace kbrun {
namespace {

ProcessResult BindLoopback(bool loopback_up) {
  ProcessSpec spec;
  spec.argv = {"python3", "-c",
               "import socket\n"
               "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
               "c = socket.create_connection(s.getsockname(), timeout=5); print('connected')\n"};
  spec.env = CurrentEnvironment();
  spec.timeout_s = 30;
  spec.isolate_network = true;
  spec.loopback_up = loopback_up;
  return RunProcess(spec);
}

TEST(SubprocessLoopback, UpOnlyWhenAsked) {
  ProcessResult up = BindLoopback(true);
  EXPECT_EQ(up.exit_code, 0) << up.output;
  EXPECT_NE(up.output.find("connected"), std::string::npos) << up.output;
  ProcessResult down = BindLoopback(false);
  EXPECT_NE(down.exit_code, 0) << down.output;  // Cannot assign requested address: lo is down
}

}  // namespace
}  // namespace kbrun
