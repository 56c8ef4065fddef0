/* make_fuzz_seeds.c — writes the fuzzers' seed corpus: tiny synthetic models (tests/unit/synth_model.h).
 *
 * Usage: make_fuzz_seeds CT2_DIR GGML_DIR. Seeds are generated, not kept in
 * the repository: a loadable model of each format, one with an alias, one
 * with a cyclic alias table, a few cut short, and past findings, so the
 * fuzzers start from inputs that reach every stage of the loaders.
 */
#include "synth_model.h"

#include <stdio.h>

static int write_seed(const char *dir, const char *name, const synth_buf *b, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "make_fuzz_seeds: cannot write %s\n", path);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_fuzz_seeds CT2_DIR GGML_DIR\n");
        return 2;
    }
    synth_hp hp = synth_default_hp();
    int ok = 1;

    synth_ct2 c = {0};
    synth_buf b = {0};
    synth_ct2_model(&c, &hp);
    synth_ct2_finish(&c, &b);
    ok &= write_seed(argv[1], "good.bin", &b, b.n);
    ok &= write_seed(argv[1], "header.bin", &b, 200);
    ok &= write_seed(argv[1], "half.bin", &b, b.n / 2);
    free(b.p);

    c = (synth_ct2){0};
    b = (synth_buf){0};
    synth_ct2_model(&c, &hp);
    synth_ct2_alias(&c, "decoder/projection/weight", "decoder/embeddings/weight");
    synth_ct2_alias(&c, "encoder/layer_1/ffn/linear_0/bias", "cycle");
    synth_ct2_alias(&c, "cycle", "encoder/layer_1/ffn/linear_0/bias");
    synth_ct2_finish(&c, &b);
    ok &= write_seed(argv[1], "aliases.bin", &b, b.n);
    free(b.p);

    b = (synth_buf){0};
    synth_ggml_model(&b, &hp);
    ok &= write_seed(argv[2], "good.bin", &b, b.n);
    ok &= write_seed(argv[2], "header.bin", &b, 56 + 80 * 201 * 4 + 64);
    ok &= write_seed(argv[2], "most.bin", &b, b.n - 1000);
    /* found by this fuzzer: n_audio_ctx * 2 overflowed in the bounds check */
    const uint32_t huge_audio_ctx = 1073743324u;
    memcpy(b.p + 8, &huge_audio_ctx, 4);
    ok &= write_seed(argv[2], "audio-ctx-overflow.bin", &b, 56 + 80 * 201 * 4 + 64);
    free(b.p);
    return ok ? 0 : 1;
}
