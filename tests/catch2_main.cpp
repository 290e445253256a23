// The one translation unit that compiles Catch2's main (v2 single header).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
