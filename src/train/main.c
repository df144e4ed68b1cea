/* main.c -- bin/hyperrec-train: fit, eval, gen, index, check-index
 * (docs/training.md). Each command's options are parsed into the structs
 * of train.h / lab.h by src/train/cli/; this file only dispatches.
 *
 * Exit status: 0 success, 1 failure (bad input data, I/O, Redis), 2 usage
 * error. Results go to stdout (fit: the new version directory; eval: one
 * JSON line); progress and logs go to stderr. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const char usage_main[] =
    "usage: hyperrec-train <command> [options]\n"
    "\n"
    "commands:\n"
    "  fit    train a model and publish a new version MODELS/NAME/<version>\n"
    "  eval   offline evaluation: the loo split of MovieLens 100K\n"
    "         (../shared/data/ml-100k/splits/loo/PROTOCOL.md), the context\n"
    "         protocols ctx80 / ctx80-rc (../shared/data/CONTEXT-PROTOCOL.md),\n"
    "         leave-last-out on an event file, cold items, cold users\n"
    "  gen    write a synthetic data set with context effects\n"
    "  index  build an ANN index (index.bin) from a VEC1 vector file\n"
    "  check-index  recall of a version's index for its own users\n"
    "\n"
    "`hyperrec-train <command> --help` describes each command.\n";

static const struct {
  const char *name;
  int (*run)(args_t *a);
} commands[] = {
    {"fit", cmd_fit},     {"eval", cmd_eval},         {"gen", cmd_gen},
    {"index", cmd_index}, {"check-index", cmd_check},
};

int main(int argc, char **argv) {
  args_t a = {argc - 1, argv + 1, 0};

  if (argc < 2) {
    fputs(usage_main, stderr);
    return 2;
  }
  if (help(argv[1])) {
    fputs(usage_main, stdout);
    return 0;
  }
  for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
    if (strcmp(argv[1], commands[k].name) == 0)
      return commands[k].run(&a);
  fprintf(stderr, "%s: unknown command \"%s\"\n\n%s", hr_cli_prog, argv[1],
          usage_main);
  return 2;
}
