// Every environment variable kbrun reads as configuration, in one table (as ccache keeps its
// options): the variable, the flag that wins over it, the commands that read it and what it
// sets. docs/OPTIONS.md holds the same table, generated from this one (EnvOptionsMarkdown), and
// so do the subcommands' --help footers (EnvOptionsHelp); env_options_test.cc checks that the page
// matches and that every variable the sources read is in the table, commands_cli_test.cc that
// no footer describes a variable by hand.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbrun {

struct EnvOption {
  const char* name;      // KBRUN_PYTHON
  const char* flag;      // the flag that wins over it ("--python"), or "" when none
  const char* commands;  // who reads it: "eval, batch, serve", "tests", ...
  const char* meaning;   // one line
};

// The table, in the order docs/OPTIONS.md lists it.
const std::vector<EnvOption>& EnvOptions();

// The variable's value when it is set and not empty, else nullopt. `name` must be in
// EnvOptions(): a name that is not throws std::logic_error (a kbrun bug, caught by the tests).
std::optional<std::string> GetEnvOption(std::string_view name);

// docs/OPTIONS.md's table, as Markdown rows with a header.
std::string EnvOptionsMarkdown();

// The rows whose commands column names `command` (its first word: "eval" of "eval, batch
// (--profile)"), for that subcommand's --help footer: a heading, then "  NAME  --flag: meaning",
// wrapped to 100 columns. Empty when no row names it.
std::string EnvOptionsHelp(std::string_view command);

}  // namespace kbrun
