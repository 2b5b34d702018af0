// The placement planner on synthetic sizes: everything fits, half fits, nothing fits, two
// devices by free memory and by --tensor-split, explicit counts, the margin, and weight
// types the plugin cannot compute.
#include "engine/placement.h"

#include <gtest/gtest.h>

using namespace shimmy;
using namespace shimmy::engine;

namespace {

constexpr uint64_t MiB = 1ull << 20;

// 10 layers of 100 MiB, 10 MiB KV each, a 50 MiB head, 20 MiB scratch, 512 MiB margin.
PlacementInput model10() {
  PlacementInput in;
  in.layer_bytes.assign(10, 100 * MiB);
  in.layer_unsupported.assign(10, "");
  in.cpu_layer_bytes.assign(10, 100 * MiB);
  in.head_bytes = in.cpu_head_bytes = 50 * MiB;
  in.embd_bytes = 40 * MiB;
  in.kv_bytes_per_layer = 10 * MiB;
  in.scratch_bytes = 20 * MiB;
  return in;
}

// What a device needs for n layers (+ head): weights, KV, scratch, margin.
uint64_t need(int n, bool head = true) {
  return n * 110 * MiB + (head ? 50 * MiB : 0) + 20 * MiB + 512 * MiB;
}

PlacementDevice dev(const std::string& label, uint64_t free_bytes) {
  return {label, "Fake GPU", free_bytes};
}

GpuLayers count(int64_t n) {
  return {GpuLayers::Mode::Count, n};
}

}  // namespace

TEST(Placement, ParsesFlags) {
  EXPECT_EQ(parse_gpu_layers("auto")->mode, GpuLayers::Mode::Auto);
  EXPECT_EQ(parse_gpu_layers("all")->mode, GpuLayers::Mode::All);
  EXPECT_EQ(parse_gpu_layers("12")->count, 12);
  for (const char* bad : {"", "-1", "1.5", "12x", "lots", "9999999999"}) {
    EXPECT_FALSE(parse_gpu_layers(bad).ok()) << bad;
  }
  EXPECT_EQ(parse_tensor_split("3,1").value(), (std::vector<double>{3, 1}));
  EXPECT_EQ(parse_tensor_split("0,0.5").value(), (std::vector<double>{0, 0.5}));
  for (const char* bad : {"", "3,", "a,b", "-1,2", "0,0", "1;2", "inf"}) {
    EXPECT_FALSE(parse_tensor_split(bad).ok()) << bad;
  }
}

TEST(Placement, NoDeviceOrZeroLayersIsAllCpu) {
  auto in = model10();
  auto p = plan_placement(in);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->all_cpu());
  EXPECT_EQ(p->cpu_layers, 10);
  EXPECT_TRUE(p->head_on_cpu);
  EXPECT_EQ(p->cpu_weight_bytes, 1090 * MiB);
  EXPECT_EQ(p->cpu_kv_bytes, 100 * MiB);
  EXPECT_EQ(describe_plan(*p, in.devices),
            "cpu: 10/10 layers + output, 1090 MiB weights + 100 MiB KV");

  in.devices = {dev("fake:0", 64000 * MiB)};
  in.request = count(0);
  EXPECT_TRUE(plan_placement(in)->all_cpu());
}

TEST(Placement, AutoFitsAll) {
  auto in = model10();
  in.devices = {dev("fake:0", need(10))};
  auto p = plan_placement(in);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->segments.size(), 1u);
  const Segment& s = p->segments[0];
  EXPECT_EQ(s.begin, 0);
  EXPECT_EQ(s.end, 10);
  EXPECT_TRUE(s.head);
  EXPECT_EQ(s.weight_bytes, 1050 * MiB);
  EXPECT_EQ(s.kv_bytes, 100 * MiB);
  EXPECT_EQ(p->cpu_layers, 0);
  EXPECT_FALSE(p->head_on_cpu);
  EXPECT_EQ(p->cpu_weight_bytes, 40 * MiB);  // embeddings only
  EXPECT_TRUE(p->notes.empty());
  EXPECT_EQ(
      describe_plan(*p, in.devices),
      "fake:0 Fake GPU: 10/10 layers + output, 1050 MiB weights + 100 MiB KV; cpu: embeddings");
}

TEST(Placement, AutoFitsHalfFromTheLastLayer) {
  auto in = model10();
  in.devices = {dev("fake:0", need(5) + 109 * MiB)};  // a sixth layer needs 110 MiB more
  auto p = plan_placement(in);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->segments.size(), 1u);
  EXPECT_EQ(p->segments[0].begin, 5);
  EXPECT_EQ(p->segments[0].end, 10);
  EXPECT_TRUE(p->segments[0].head);
  EXPECT_EQ(p->cpu_layers, 5);
  EXPECT_FALSE(p->head_on_cpu);
  EXPECT_EQ(p->cpu_weight_bytes, 40 * MiB + 500 * MiB);
  EXPECT_EQ(p->cpu_kv_bytes, 50 * MiB);
  ASSERT_EQ(p->notes.size(), 1u);
  EXPECT_NE(p->notes[0].find("5 of 10 layers fit"), std::string::npos) << p->notes[0];
  EXPECT_EQ(describe_plan(*p, in.devices),
            "fake:0 Fake GPU: 5/10 layers + output, 550 MiB weights + 50 MiB KV; cpu: 5/10 layers "
            "+ embeddings, 540 MiB weights + 50 MiB KV");
}

TEST(Placement, AutoNothingFits) {
  auto in = model10();
  in.devices = {dev("fake:0", 400 * MiB)};  // less than the margin
  auto p = plan_placement(in);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->all_cpu());
  ASSERT_EQ(p->notes.size(), 1u);
  EXPECT_NE(p->notes[0].find("the output alone does not fit"), std::string::npos);
  EXPECT_NE(p->notes[0].find("needs 582 MiB"), std::string::npos) << p->notes[0];
  EXPECT_NE(p->notes[0].find("400 MiB free"), std::string::npos) << p->notes[0];

  // Room for the head but no layer: the head alone goes to the device.
  in.devices = {dev("fake:0", need(0))};
  p = plan_placement(in);
  ASSERT_EQ(p->segments.size(), 1u);
  EXPECT_EQ(p->segments[0].begin, 10);
  EXPECT_EQ(p->segments[0].end, 10);
  EXPECT_TRUE(p->segments[0].head);
  EXPECT_EQ(p->cpu_layers, 10);
}

TEST(Placement, MarginCounts) {
  auto in = model10();
  in.devices = {dev("fake:0", need(10))};
  EXPECT_EQ(plan_placement(in)->cpu_layers, 0);
  in.margin_bytes = 513 * MiB;
  EXPECT_EQ(plan_placement(in)->cpu_layers, 1);
  in.margin_bytes = 0;
  in.devices = {dev("fake:0", need(10) - 512 * MiB)};
  EXPECT_EQ(plan_placement(in)->cpu_layers, 0);
}

TEST(Placement, TwoDevicesShareByFreeMemory) {
  auto in = model10();
  in.devices = {dev("fake:0", 8000 * MiB), dev("fake:1", 8000 * MiB)};
  auto p = plan_placement(in);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->segments.size(), 2u);
  EXPECT_EQ(p->segments[0].device, 0);
  EXPECT_EQ(p->segments[0].begin, 0);
  EXPECT_EQ(p->segments[0].end, 5);
  EXPECT_FALSE(p->segments[0].head);
  EXPECT_EQ(p->segments[1].device, 1);
  EXPECT_EQ(p->segments[1].begin, 5);
  EXPECT_EQ(p->segments[1].end, 10);
  EXPECT_TRUE(p->segments[1].head);
  EXPECT_EQ(p->segments[1].weight_bytes, 550 * MiB);

  // Free memory 3:1.
  in.devices = {dev("fake:0", 12000 * MiB), dev("fake:1", 4000 * MiB)};
  p = plan_placement(in);
  ASSERT_EQ(p->segments.size(), 2u);
  EXPECT_EQ(p->segments[0].end - p->segments[0].begin, 8);  // 7.5 -> 8 (ties: earlier)
  EXPECT_EQ(p->segments[1].end - p->segments[1].begin, 2);
}

TEST(Placement, TensorSplitOverridesProportions) {
  auto in = model10();
  in.devices = {dev("fake:0", 8000 * MiB), dev("fake:1", 8000 * MiB)};
  in.tensor_split = {3, 1};
  auto p = plan_placement(in);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->segments.size(), 2u);
  EXPECT_EQ(p->segments[0].end, 8);
  EXPECT_EQ(p->segments[1].begin, 8);
  EXPECT_TRUE(p->segments[1].head);

  in.tensor_split = {0, 1};  // everything on the second device
  p = plan_placement(in);
  ASSERT_EQ(p->segments.size(), 1u);
  EXPECT_EQ(p->segments[0].device, 1);
  EXPECT_EQ(p->segments[0].begin, 0);

  in.tensor_split = {1};  // missing values are 0
  p = plan_placement(in);
  ASSERT_EQ(p->segments.size(), 1u);
  EXPECT_EQ(p->segments[0].device, 0);
  EXPECT_TRUE(p->segments[0].head);

  in.tensor_split = {1, 1, 1};
  auto bad = plan_placement(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("3 values"), std::string::npos);
}

TEST(Placement, ExplicitCounts) {
  auto in = model10();
  in.devices = {dev("fake:0", need(10))};
  in.request = count(3);
  auto p = plan_placement(in);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->segments.size(), 1u);
  EXPECT_EQ(p->segments[0].begin, 7);
  EXPECT_TRUE(p->segments[0].head);
  EXPECT_EQ(p->cpu_layers, 7);

  in.request = count(99);  // more than the model has: all of them
  p = plan_placement(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->cpu_layers, 0);

  in.request = {GpuLayers::Mode::All, 0};
  EXPECT_EQ(plan_placement(in)->cpu_layers, 0);
}

TEST(Placement, ExplicitRequestThatDoesNotFitIsAnErrorWithNumbers) {
  auto in = model10();
  in.devices = {dev("fake:0", need(10) - 1)};
  in.request = {GpuLayers::Mode::All, 0};
  auto p = plan_placement(in);
  ASSERT_FALSE(p.ok());
  const std::string& m = p.error().message;
  EXPECT_NE(m.find("--gpu-layers all does not fit"), std::string::npos) << m;
  EXPECT_NE(m.find("fake:0 Fake GPU needs 1682 MiB"), std::string::npos) << m;
  EXPECT_NE(m.find("1050 MiB weights + 100 MiB KV + 20 MiB scratch + 512 MiB margin"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("1682 MiB free"), std::string::npos) << m;  // rounds; bytes differ by 1

  in.request = count(6);
  in.devices = {dev("fake:0", need(3, false)), dev("fake:1", need(3, false))};
  p = plan_placement(in);
  ASSERT_FALSE(p.ok());  // 3 + 3 fits, but the head is on fake:1
  EXPECT_NE(p.error().message.find("fake:0"), std::string::npos);
  EXPECT_NE(p.error().message.find("fake:1"), std::string::npos);
}

TEST(Placement, UnsupportedTypesStayOnTheCpu) {
  auto in = model10();
  in.devices = {dev("fake:0", need(10))};
  in.layer_unsupported[6] = "Q2_K";
  auto p = plan_placement(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->cpu_layers, 7);
  ASSERT_EQ(p->segments.size(), 1u);
  EXPECT_EQ(p->segments[0].begin, 7);
  ASSERT_FALSE(p->notes.empty());
  EXPECT_NE(p->notes[0].find("layer 6 has Q2_K weights"), std::string::npos) << p->notes[0];

  in.request = count(3);
  EXPECT_TRUE(plan_placement(in).ok());
  in.request = count(4);
  auto bad = plan_placement(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("layer 6 has Q2_K"), std::string::npos);

  // The output type unsupported: layers on the device, the head on the CPU.
  in = model10();
  in.devices = {dev("fake:0", need(10))};
  in.head_unsupported = "IQ4_NL";
  p = plan_placement(in);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->cpu_layers, 0);
  EXPECT_TRUE(p->head_on_cpu);
  EXPECT_FALSE(p->segments[0].head);
  EXPECT_EQ(describe_plan(*p, in.devices),
            "fake:0 Fake GPU: 10/10 layers, 1000 MiB weights + 100 MiB KV; cpu: output + "
            "embeddings, 90 MiB weights + 0 KiB KV");
  in.request = {GpuLayers::Mode::All, 0};
  EXPECT_FALSE(plan_placement(in).ok());
}
