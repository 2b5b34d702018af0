// One function per subcommand, one file per subcommand (cmd_<name>.cpp). Each gets the
// arguments after the subcommand name (argv[0] is "shimmy <name>") and returns the exit
// status: 0 success, 1 bad input or failure, 2 usage error, 3 an explicit backend or
// placement request that cannot be honoured.
#pragma once

namespace shimmy::cli {

int cmd_serve(int argc, char** argv);
int cmd_show(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_detokenize(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_logits(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_list(int argc, char** argv);
int cmd_doctor(int argc, char** argv);

}  // namespace shimmy::cli
