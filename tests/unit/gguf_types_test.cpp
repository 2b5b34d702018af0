#include <gtest/gtest.h>

#include "gguf/types.h"

using namespace shimmy::gguf;

TEST(GgufTypes, KnownBlockLayouts) {
  EXPECT_EQ(type_traits(2)->block_bytes, 18u);    // Q4_0
  EXPECT_EQ(type_traits(12)->block_bytes, 144u);  // Q4_K
  EXPECT_EQ(type_traits(14)->block_bytes, 210u);  // Q6_K
  EXPECT_FALSE(type_traits(4).has_value());       // retired Q4_2
  EXPECT_EQ(type_name(99), "type99");
  EXPECT_EQ(*row_bytes(TensorType::Q4_K, 512), 288u);
  EXPECT_FALSE(row_bytes(TensorType::Q4_K, 100).has_value());
}
