/* model.h — the in-memory Whisper model: hyper-parameters, weights, vocabulary. */
#ifndef ASR_MODEL_H
#define ASR_MODEL_H

#include "internal.h"
#include "tensor.h"

/* Hyper-parameters, all read from the model file (openai/whisper ModelDimensions). */
typedef struct asr_hparams {
    int n_mels;        /* 80, or 128 for large-v3                         */
    int n_audio_ctx;   /* 1500 encoder positions per 30 s window          */
    int n_audio_state; /* encoder width d                                 */
    int n_audio_head;
    int n_audio_layer;
    int n_vocab;       /* 51864 (.en), 51865, 51866 (v3)                  */
    int n_text_ctx;    /* 448 decoder positions                           */
    int n_text_state;  /* decoder width (equals n_audio_state in Whisper)  */
    int n_text_head;
    int n_text_layer;
} asr_hparams;

/* Linear-layer weights are asr_tensor, in the format of the model's compute
 * type (model_compute.c converts them after loading); everything else
 * (conv stem, positions, biases, layer norms) is float32. As loaded, and so
 * for ASR_COMPUTE_FLOAT32, the encoder's matrices and the cross-attention
 * K/V projection are float32, the decoder's other matrices and the token
 * embedding IEEE half: the decoder reads every one of them for each token,
 * so it is bound by memory bandwidth, and Whisper's checkpoints are float16,
 * so holding them as half loses nothing for them. */
typedef struct asr_encoder_layer {
    float *attn_ln_g, *attn_ln_b; /* (d)                                   */
    asr_tensor attn_qkv_w;        /* (3d, d): rows q, then k, then v       */
    float *attn_qkv_b;            /* (3d): k part is zero in Whisper       */
    asr_tensor attn_out_w;        /* (d, d)                                */
    float *attn_out_b;            /* (d)                                   */
    float *mlp_ln_g, *mlp_ln_b;   /* (d)                                   */
    asr_tensor mlp_fc1_w;         /* (4d, d)                               */
    float *mlp_fc1_b;             /* (4d)                                  */
    asr_tensor mlp_fc2_w;         /* (d, 4d)                               */
    float *mlp_fc2_b;             /* (d)                                   */
} asr_encoder_layer;

typedef struct asr_decoder_layer {
    float *self_ln_g, *self_ln_b;   /* (d)                                 */
    asr_tensor self_qkv_w;          /* (3d, d)                             */
    float *self_qkv_b;              /* (3d)                                */
    asr_tensor self_out_w;          /* (d, d)                              */
    float *self_out_b;              /* (d)                                 */
    float *cross_ln_g, *cross_ln_b; /* (d)                                 */
    asr_tensor cross_q_w;           /* (d, d)                              */
    float *cross_q_b;               /* (d)                                 */
    asr_tensor cross_kv_w;          /* (2d, d): rows k then v; the encoder
                                       pass uses it, once per window       */
    float *cross_kv_b;              /* (2d)                                */
    asr_tensor cross_out_w;         /* (d, d)                              */
    float *cross_out_b;             /* (d)                                 */
    float *mlp_ln_g, *mlp_ln_b;     /* (d)                                 */
    asr_tensor mlp_fc1_w;           /* (4d, d)                             */
    float *mlp_fc1_b;               /* (4d)                                */
    asr_tensor mlp_fc2_w;           /* (d, 4d)                             */
    float *mlp_fc2_b;               /* (d)                                 */
} asr_decoder_layer;

typedef struct asr_weights {
    float *conv1_w, *conv1_b;     /* (d, n_mels, 3), (d)                   */
    float *conv2_w, *conv2_b;     /* (d, d, 3), (d)                        */
    float *enc_pos;               /* (n_audio_ctx, d)                      */
    asr_encoder_layer *enc;       /* [n_audio_layer]                       */
    float *enc_ln_g, *enc_ln_b;   /* (d)                                   */
    asr_tensor tok_emb;           /* (n_vocab, d), also the output projection */
    float *dec_pos;               /* (n_text_ctx, d)                       */
    asr_decoder_layer *dec;       /* [n_text_layer]                        */
    float *dec_ln_g, *dec_ln_b;   /* (d)                                   */
} asr_weights;

/* Ids of the special tokens, looked up in the model's own vocabulary. */
typedef struct asr_special_tokens {
    int eot, sot, sot_prev, sot_lm, translate, transcribe;
    int no_speech, no_timestamps, timestamp_begin;
    int first_lang;       /* id of <|en|>; languages follow in asr_lang order */
    int n_langs;          /* languages the vocabulary has (0 for .en models) */
} asr_special_tokens;

struct asr_model {
    asr_hparams hp;
    asr_weights w;
    asr_special_tokens tok;
    asr_tokenizer *tokenizer;
    int multilingual;
    int n_threads;
    int *suppress_tokens;        /* model's suppress list ("-1" in openai)  */
    int n_suppress_tokens;
    int *suppress_blank;         /* tokens of " " plus eot                  */
    int n_suppress_blank;
    /* Cross-attention heads whose weights follow the speech in time: pairs
     * (decoder layer, head) from config.json's "alignment_heads"; absent →
     * every head of the decoder's second half, as openai does. */
    int (*align_heads)[2];
    int n_align_heads;
    char type[16];               /* "tiny", "base", "small", ...            */
    char source_format[16];      /* "ctranslate2" or "ggml"                 */
    asr_compute_type compute_type; /* resolved (never AUTO) before loading */
    unsigned cpu_features;       /* asr_cpu_features() at load: the kernels
                                    every state of this model may use       */
    size_t weight_bytes;         /* memory the weights take after conversion */
    /* All float32 tensors live in one allocation, the half ones in another;
     * weights point into them. */
    float *arena;
    size_t arena_floats;
    uint16_t *arena16;
    size_t arena_halves;
};

/* Loaders fill a zeroed model; on error the caller frees it with asr_model_free. */
asr_status asr_model_load_ct2(asr_model *m, const char *dir, asr_error *err);
asr_status asr_model_load_ggml(asr_model *m, const char *path, asr_error *err);
/* The parsing halves of the loaders, on a file already in memory (the
 * loaders map the file and call these; the fuzzers call them directly).
 * ct2: model.bin only — hyper-parameters and weights, no tokenizer or
 * config.json. ggml: the whole file; `name` is used in messages. */
asr_status asr_model_load_ct2_bin(asr_model *m, const void *data, size_t size, asr_error *err);
asr_status asr_model_load_ggml_buffer(asr_model *m, const void *data, size_t size, const char *name,
                                      asr_error *err);

/* Bounds on hyper-parameters read from a model file, checked by every loader
 * before it allocates anything sized by them. They admit every released
 * Whisper (tiny 4 layers × 384 wide … large-v3 32 × 1280, 20 heads, 448 text
 * positions, 51864..51866 tokens) with room to spare, and bound what a
 * crafted file can make us allocate: weights, and per request the decoder
 * caches (layers × batch × n_text_ctx × width) and logits (batch × n_vocab). */
#define ASR_MAX_LAYERS 64     /* per stack; large has 32                      */
#define ASR_MAX_WIDTH 4096    /* n_audio_state, n_text_state; large has 1280  */
#define ASR_MAX_HEADS 64      /* large has 20                                 */
#define ASR_MIN_TEXT_CTX 8    /* sot sequence (≤ 4) + prompt (n_text_ctx/2 - 1) fit */
#define ASR_MAX_TEXT_CTX 448  /* every Whisper checkpoint: its decoder was trained on 448 positions */
#define ASR_MIN_VOCAB 51864   /* tiktoken base + specials + 1501 timestamps (.en) */
#define ASR_MAX_VOCAB 65536   /* 51866 for large-v3; token ids fit in 16 bits */

/* ASR_ERR_MODEL with a message naming the field (prefixed by `what`, the
 * file) unless hp is within the bounds above: n_mels 80 or 128, n_audio_ctx
 * 1500, widths multiples of 8 (the half kernels read rows 8 at a time) split
 * evenly over the heads. */
asr_status asr_hparams_check(const asr_hparams *hp, const char *what, asr_error *err);

/* Shared by the loaders once hparams and the tokenizer are known: special
 * token ids, model type name, default suppress lists. */
asr_status asr_model_finish_load(asr_model *m, asr_error *err);

/* Memory for weight arenas: 2 MiB aligned and marked for transparent huge
 * pages, so loading takes few page faults and the decoder, which streams
 * tens of megabytes per token, few TLB misses. Zeroed when `zero`. Free
 * with free(). */
void *asr_alloc_weights(size_t bytes, int zero);
/* Give the whole pages inside [p, p + bytes) back to the system
 * (MADV_DONTNEED): anonymous memory reads as zeros afterwards, a read-only
 * file mapping re-reads the file; the range loses the huge-page hint. Only
 * for memory nobody reads again, or a file mapping. */
void asr_release_pages(const void *p, size_t bytes);

/* IEEE half and bfloat16 to float. */
float asr_f16_to_f32(uint16_t h);
float asr_bf16_to_f32(uint16_t h);
uint16_t asr_f32_to_f16(float f);
/* n values at a time (F16C), rounding to nearest even like the scalar form. */
void asr_f16_to_f32_n(const uint16_t *in, float *out, size_t n);
void asr_f32_to_f16_n(const float *in, uint16_t *out, size_t n);
/* Half values stored as little-endian bytes at any alignment (file data). */
void asr_f16_bytes_to_f32_n(const unsigned char *in, float *out, size_t n);

/* ---- model_compute.c ---- */
/* The compute type AUTO stands for on a CPU with these features. */
asr_compute_type asr_compute_type_auto(unsigned cpu_features);
/* Whether linear weights are int8 under this compute type. */
int asr_compute_type_is_int8(asr_compute_type type);
/* Convert every linear weight to the model's compute type (after loading). */
asr_status asr_model_convert_weights(asr_model *m, asr_error *err);
/* Every linear-layer tensor of the model, for loops over them: fills up to
 * cap pointers and returns how many there are. */
int asr_model_linear_tensors(asr_model *m, asr_tensor **out, int cap);

/* Halves the decoder's matrices need: the token embedding and, per layer,
 * self q|k|v (3d²), self out (d²), cross q (d²), cross out (d²), fc1 and fc2
 * (4d² each) = 14d². */
size_t asr_decoder_halves(const asr_hparams *hp);

#endif /* ASR_MODEL_H */
