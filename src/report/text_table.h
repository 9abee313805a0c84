// Aligned text tables for reports and the monitor: columns sized to their widest
// cell, numbers right-aligned.
#pragma once

#include <string>
#include <vector>

namespace kbrun::report {

class TextTable {
 public:
  enum class Align { kLeft, kRight };
  explicit TextTable(std::vector<std::string> header, std::vector<Align> align = {});
  void AddRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  // Each line indented by `indent` spaces; a dashed rule under the header.
  std::string Render(size_t indent = 0) const;

 private:
  std::vector<std::string> header_;
  std::vector<Align> align_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace kbrun::report
