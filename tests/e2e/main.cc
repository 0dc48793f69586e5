// The doctest runner for the end-to-end tests (real daemons; see harness.h).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
