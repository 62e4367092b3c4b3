// rdmashare: the operator CLI (doctor, devices, rails, gid, capture, pool). Builds the real readers
// and hands everything else to RunCli (tools/cli/cli.h).
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "common/logging.h"
#include "rdma/ibverbs_reader.h"
#include "rdma/netns_mode.h"
#include "tools/cli/cli.h"

int main(int argc, char** argv) {
  try {
    // The commands report problems themselves; the library's log lines would repeat them.
    (void)rdmashare::SetupLogging("error");
    rdmashare::rdma::NetlinkNetnsModeReader netns_reader;
    rdmashare::cli::GetifaddrsAddressSource addresses;
    rdmashare::rdma::IbverbsReader verbs_reader;
    rdmashare::cli::Environment env;
    env.netns_reader = &netns_reader;
    env.addresses = &addresses;
    env.verbs_reader = &verbs_reader;
    std::vector<std::string> args(argv + 1, argv + argc);
    return rdmashare::cli::RunCli(args, env, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "rdmashare: internal error: " << e.what() << "\n";
    return 1;
  }
}
