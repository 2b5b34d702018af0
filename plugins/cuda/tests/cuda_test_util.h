// Shared by the CUDA tests: the harness (harness.h) plus the skip-with-reason rule.
#pragma once

#include <gtest/gtest.h>

#include "harness.h"

// Skips the current test unless the plugin loaded and found a usable device.
#define SHIMMY_REQUIRE_GPU()                                                           \
  do {                                                                                 \
    ASSERT_NE(::shimmy::cudatest::api(), nullptr) << ::shimmy::cudatest::load_error(); \
    if (::shimmy::cudatest::probe().n_devices == 0)                                    \
      GTEST_SKIP() << "no usable CUDA device: " << ::shimmy::cudatest::probe().reason; \
  } while (0)
