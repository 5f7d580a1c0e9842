// llama-load-probe: what llama-bench does not report, measured against the same libllama.
//   llama-load-probe MODEL.gguf THREADS PROMPT_TOKENS REPEATS [LORA.gguf]
// Prints one JSON line: load_s (llama_model_load_from_file, default mmap), context_s, lora_s,
// first_ttft_s (the first prompt after load: with mmap it also pages the weights in) and
// ttft_s (each later prompt on a cleared cache: decode PROMPT_TOKENS tokens, argmax the last logits).
//   llama-load-probe MODEL.gguf THREADS --ids 1,2,3 [LORA.gguf]
// prints {"top": [[id, logit], ...], "logits": [...]}: the 10 largest and all logits after those ids
// (bench.py check compares them with `yanyi logits` to show both engines run the same model).
#include "llama.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static void quiet(ggml_log_level, const char *, void *) {}

int main(int argc, char ** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL.gguf THREADS (PROMPT_TOKENS REPEATS | --ids 1,2,3) [LORA.gguf]\n", argv[0]);
        return 2;
    }
    const bool top_mode = strcmp(argv[3], "--ids") == 0;
    std::vector<llama_token> ids;
    if (top_mode) {
        for (const char * p = argv[4]; *p; ) {
            ids.push_back(llama_token(strtol(p, const_cast<char **>(&p), 10)));
            if (*p == ',') p++;
        }
    }
    const int threads = atoi(argv[2]);
    const int n_prompt = top_mode ? int(ids.size()) : atoi(argv[3]), repeats = top_mode ? 0 : atoi(argv[4]);
    llama_log_set(quiet, nullptr);
    llama_backend_init();

    double t = now();
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "llama-load-probe: cannot load %s\n", argv[1]); return 1; }
    const double load_s = now() - t;

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_prompt + 16;
    cp.n_batch = cp.n_ubatch = 512;
    cp.n_threads = cp.n_threads_batch = threads;
    t = now();
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "llama-load-probe: cannot create a context\n"); return 1; }
    const double context_s = now() - t;

    double lora_s = 0;
    if (argc > 5) {
        t = now();
        llama_adapter_lora * a = llama_adapter_lora_init(model, argv[5]);
        float scale = 1.0f;
        if (!a || llama_set_adapters_lora(ctx, &a, 1, &scale) != 0) {
            fprintf(stderr, "llama-load-probe: cannot apply the LoRA %s\n", argv[5]);
            return 1;
        }
        lora_s = now() - t;
    }

    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    if (top_mode) {
        if (llama_decode(ctx, llama_batch_get_one(ids.data(), int(ids.size()))) != 0) {
            fprintf(stderr, "llama-load-probe: llama_decode failed\n");
            return 1;
        }
        const float * logits = llama_get_logits_ith(ctx, -1);
        std::vector<int> order(n_vocab);
        for (int i = 0; i < n_vocab; i++) order[i] = i;
        std::partial_sort(order.begin(), order.begin() + 10, order.end(),
                          [&](int a, int b) { return logits[a] > logits[b]; });
        printf("{\"top\": [");
        for (int i = 0; i < 10; i++) printf("%s[%d, %.6f]", i ? ", " : "", order[i], logits[order[i]]);
        printf("], \"logits\": [");
        for (int i = 0; i < n_vocab; i++) printf("%s%.5f", i ? ", " : "", logits[i]);
        printf("]}\n");
        return 0;
    }
    std::vector<llama_token> prompt(n_prompt);
    srand(42);
    for (auto & tok : prompt) tok = 3 + rand() % (n_vocab - 3);

    std::vector<double> ttft;
    int first_token = -1;
    for (int r = 0; r <= repeats; r++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        t = now();
        for (int i = 0; i < n_prompt; i += 512) {
            const int n = std::min(512, n_prompt - i);
            if (llama_decode(ctx, llama_batch_get_one(prompt.data() + i, n)) != 0) {
                fprintf(stderr, "llama-load-probe: llama_decode failed\n");
                return 1;
            }
        }
        const float * logits = llama_get_logits_ith(ctx, -1);
        first_token = int(std::max_element(logits, logits + n_vocab) - logits);
        ttft.push_back(now() - t);
    }
    const double first = ttft[0];
    ttft.erase(ttft.begin());
    std::sort(ttft.begin(), ttft.end());
    const double median = ttft.empty() ? first : ttft[ttft.size() / 2];
    printf("{\"load_s\": %.4f, \"context_s\": %.4f, \"lora_s\": %.4f, \"first_ttft_s\": %.4f, \"ttft_s\": %.4f, "
           "\"repeats\": %d, \"first_token\": %d}\n", load_s, context_s, lora_s, first, median, repeats, first_token);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
