// Token sampling for one sequence, and the stop-string filter on its decoded text.
//
// Sampler: turns one logits row [n_vocab] into a token id. The chain is llama.cpp's
// default order, because users tune these knobs against llama.cpp and Ollama:
//
//   logit bias → penalties → top-k → top-p → min-p → temperature → draw from softmax
//
//   logit bias        logit[id] += bias (a bias of -inf bans the token)
//   penalties         for each token seen in the last `penalty_last_n` accepted tokens,
//                     with `count` occurrences there:
//                       repetition: logit > 0 ? logit / repeat_penalty : logit * repeat_penalty
//                       frequency/presence: logit -= count*frequency + presence
//   top-k             keep the k highest logits (k <= 0: off)
//   top-p             keep the smallest prefix (by logit, descending) whose softmax mass
//                     reaches p (p >= 1: off); at least one token is kept
//   min-p             keep tokens whose probability is >= min_p * the top probability
//                     (min_p <= 0: off)
//   temperature       logits /= temperature; temperature <= 0 means greedy: the argmax
//                     after bias and penalties, lowest id on ties, no randomness used
//
// Determinism: the draw uses a 64-bit Mersenne Twister seeded from `seed`, so the same
// seed and the same logits give the same tokens; ties in every sort break by lower id.
// Memory: all buffers ([n_vocab] candidates, [n_vocab] window counts, the window ring)
// are allocated in the constructor; sample() and accept() never allocate.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace shimmy::engine {

// The index of the largest of logits[0..n), the lowest index on ties (n >= 1). NaN entries
// are never picked unless every entry is NaN (then 0). One pass: the maximum of each block
// of 64 values over eight running lanes, then the first index in the first block holding
// the largest, which matters when a step samples 16 sequences of a 32k-150k vocabulary.
int32_t argmax(const float* logits, int64_t n);

struct SamplerParams {
  float temperature = 0.8f;     // <= 0: greedy
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off
  float min_p = 0.05f;          // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t penalty_last_n = 64;          // window of accepted tokens the penalties look at; 0: off
  std::map<int32_t, float> logit_bias;  // id → added to its logit; -inf bans it
  std::optional<uint64_t> seed;         // none: a random seed (see Sampler::seed())
};

class Sampler {
 public:
  Sampler(SamplerParams params, int32_t n_vocab);

  // Picks a token from logits[0..n_vocab); the logits are not modified. Does not record
  // the token: call accept() with whatever token the sequence actually takes.
  int32_t sample(const float* logits);
  // Records a token into the penalty window (prompt tokens too, if they should count).
  void accept(int32_t id);
  // Empties the penalty window and restarts the random stream from the seed.
  void reset();

  uint64_t seed() const { return seed_; }  // the seed in use (the drawn one if none given)
  const SamplerParams& params() const { return p_; }
  int32_t n_vocab() const { return n_vocab_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };
  void apply_bias_and_penalties();
  int32_t argmax() const;
  void sort_candidates();  // descending logit, lower id first on ties
  void top_k();
  void top_p();
  void min_p();
  int32_t draw();

  SamplerParams p_;
  int32_t n_vocab_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<Candidate> cand_;  // [n_vocab]; the first n_ are live
  size_t n_ = 0;
  bool sorted_ = false;
  std::vector<float> prob_;      // [n_vocab] scratch for softmax
  std::vector<int32_t> window_;  // ring of the last penalty_last_n accepted ids
  size_t window_len_ = 0, window_head_ = 0;
  std::vector<int32_t> count_;   // [n_vocab] occurrences of each id in the window
  std::vector<uint32_t> stamp_;  // [n_vocab] marks ids already penalised this call
  uint32_t stamp_now_ = 0;
};

// Stop strings over streamed text. Generation produces decoded pieces; push() appends
// one and says how much text may be sent to the client now:
//   - if a stop string occurs in the held text, the text before its first occurrence is
//     emitted, the stop string and anything after it are dropped, and stopped = true;
//   - otherwise the longest tail that could still grow into a stop string ("ab" while
//     waiting for "abc") is held back, and so is an incomplete UTF-8 sequence at the
//     end, so a client never sees half a character.
// flush() returns whatever is still held when generation ends for another reason.
class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops);

  struct Step {
    std::string emit;
    bool stopped = false;
  };
  Step push(std::string_view piece);
  std::string flush();
  bool stopped() const { return stopped_; }
  const std::string& held() const { return held_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace shimmy::engine
