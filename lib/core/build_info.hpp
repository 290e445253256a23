// The suite's version and the git commit it was built from (filled in by meson's vcs_tag).
#pragma once

#include <string_view>

namespace mlsys::core {

std::string_view version();
std::string_view git_commit();

}  // namespace mlsys::core
