/* main.c — the `asr` command: transcribe, models, convert, serve. */
#include "asr.h"
#include "files.h"
#include "models.h"
#include "../server/server.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VAD_OPTIONS_HELP                                                                              \
    "      --vad-threshold P      speech probability threshold (default 0.5)\n"                       \
    "      --vad-neg-threshold P  below it a frame is silence (default: threshold - 0.15)\n"          \
    "      --vad-min-speech-ms N  drop speech shorter than N ms (default 0)\n"                        \
    "      --vad-max-speech-s S   split speech longer than S seconds (default: no limit)\n"           \
    "      --vad-min-silence-ms N silence that ends speech (default 2000)\n"                          \
    "      --vad-speech-pad-ms N  padding on each side of speech (default 400)\n"

int exit_code_for(asr_status s)
{
    switch (s) {
    case ASR_OK: return EXIT_OK;
    case ASR_ERR_INVALID_ARGUMENT: case ASR_ERR_UNSUPPORTED: return EXIT_USAGE;
    case ASR_ERR_IO: case ASR_ERR_MODEL: case ASR_ERR_AUDIO: case ASR_ERR_TOO_LARGE: return EXIT_BAD_INPUT;
    default: return EXIT_INTERNAL;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: asr COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  transcribe FILE...   transcribe (or translate) audio files\n"
            "  vad FILE             find the speech in an audio file (Silero VAD)\n"
            "  serve                run the OpenAI-compatible HTTP service (asr serve --help)\n"
            "  models pull NAME     download a model (tiny.en, base; see asr models list)\n"
            "  models list          show downloaded models\n"
            "  convert MODEL OUT    write MODEL as a whisper.cpp ggml file\n"
            "\n"
            "options: --help, --version\n");
}

static void transcribe_usage(FILE *f)
{
    fprintf(f,
            "usage: asr transcribe FILE... [options]\n"
            "\n"
            "  -m, --model NAME|PATH      model name in the cache or a model path (default: $ASR_MODEL or tiny.en)\n"
            "  -l, --language auto|CODE   spoken language (default auto; English-only models: en)\n"
            "      --task transcribe|translate\n"
            "      --beam-size N          beam search with N beams (default 1: greedy)\n"
            "      --best-of N            candidates when sampling at temperature > 0 (default 5)\n"
            "      --patience P           beam search patience (default 1.0)\n"
            "      --temperature T        first temperature of the fallback ladder (default 0): a window whose\n"
            "                             decode fails the compression or log-probability threshold is decoded\n"
            "                             again at T+D, T+2D, ... up to 1.0, as openai-whisper's CLI does\n"
            "      --temperature-increment-on-fallback D  the ladder's step D (default 0.2; 0 = T alone, no fallback)\n"
            "      --prompt TEXT          initial prompt\n"
            "      --no-condition-on-previous-text\n"
            "      --without-timestamps   decode without timestamp tokens\n"
            "      --word-timestamps      time every word (verbose_json gets \"words\")\n"
            "      --max-duration S       refuse audio longer than S seconds (default %.0f = 3 h; 0 = no limit)\n"
            "      --vad                  transcribe only the speech Silero VAD finds (faster-whisper's vad_filter)\n"
            VAD_OPTIONS_HELP
            "      --batch-size N         batched long-form (implies --vad): speech packed into 30 s windows,\n"
            "                             N windows encoded and decoded together, greedy (1..16; default:\n"
            "                             the sequential window loop, conditioned on the previous text)\n"
            "  -t, --threads N            threads (default: all cores)\n"
            "  -j, --jobs N               files transcribed at once, on one shared compute whose decoder steps\n"
            "                             serve all of them together; each file's text is the one it gets alone\n"
            "                             (1..64; default 4, 1 with --batch-size)\n"
            "      --compute-type TYPE    auto|float32|float16|bfloat16|int8|int8_float32|int8_bfloat16\n"
            "                             (default: $ASR_COMPUTE_TYPE or auto)\n"
            "  -f, --output-format FMT    txt|json|verbose_json|srt|vtt|tsv (default txt)\n"
            "  -o, --output-dir DIR       write FILE's base name + extension there instead of stdout\n"
            "      --progress             progress on stderr (default: when stderr is a terminal)\n"
            "\n"
            "exit status: 0 ok, 1 internal error, 2 usage error, 3 bad input (audio or model)\n",
            ASR_AUDIO_DEFAULT_MAX_DURATION_S);
}

static const char *format_extension(int fmt)
{
    switch (fmt) {
    case ASR_FORMAT_TXT: return "txt";
    case ASR_FORMAT_JSON: return "json";
    case ASR_FORMAT_VERBOSE_JSON: return "verbose.json";
    case ASR_FORMAT_SRT: return "srt";
    case ASR_FORMAT_VTT: return "vtt";
    case ASR_FORMAT_TSV: return "tsv";
    default: return "out";
    }
}

/* The output name of an input: its base name without the extension. */
static char *output_stem(const char *input)
{
    char *copy = strdup(input);
    if (!copy) return NULL;
    char *stem = strdup(basename(copy));
    free(copy);
    char *dot = stem ? strrchr(stem, '.') : NULL;
    if (dot && dot != stem) *dot = '\0';
    return stem;
}

/* With --output-dir, two inputs of the same base name would write one file:
 * refuse before any work instead of silently keeping only the last. */
static int check_output_names(char **files, int n)
{
    int rc = EXIT_OK;
    char **stems = calloc((size_t)n, sizeof *stems);
    if (!stems) return EXIT_INTERNAL;
    for (int i = 0; i < n && rc == EXIT_OK; i++) {
        stems[i] = output_stem(files[i]);
        if (!stems[i]) rc = EXIT_INTERNAL;
        for (int j = 0; j < i && rc == EXIT_OK; j++)
            if (strcmp(stems[i], stems[j]) == 0) {
                fprintf(stderr, "asr: %s and %s would both be written as %s.* in --output-dir; rename one\n",
                        files[j], files[i], stems[i]);
                rc = EXIT_USAGE;
            }
    }
    for (int i = 0; i < n; i++) free(stems[i]);
    free(stems);
    return rc;
}

/* Write body to OUT_DIR/STEM.EXT through a temporary file renamed into place,
 * so a symlink planted at the output name is replaced, never followed, and a
 * reader never sees half a file. */
static int write_output(const char *input, const char *out_dir, int fmt, const char *body)
{
    if (!out_dir) {
        fputs(body, stdout);
        fflush(stdout);
        return ferror(stdout) ? EXIT_INTERNAL : EXIT_OK;
    }
    char *stem = output_stem(input);
    if (!stem) return EXIT_INTERNAL;
    size_t n = strlen(out_dir) + strlen(stem) + 40;
    char *path = malloc(n), *tmp = malloc(n);
    int rc = EXIT_OK;
    if (!path || !tmp) {
        rc = EXIT_INTERNAL;
        goto done;
    }
    snprintf(path, n, "%s/%s.%s", out_dir, stem, format_extension(fmt));
    snprintf(tmp, n, "%s/.%s.XXXXXX", out_dir, stem);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        fprintf(stderr, "asr: cannot write in %s: %s\n", out_dir, strerror(errno));
        if (fd >= 0) close(fd);
        rc = EXIT_INTERNAL;
        goto done;
    }
    mode_t mask = umask(0); /* mkstemp makes 0600; give the file the mode fopen would */
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    int ok = fputs(body, f) >= 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "asr: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        rc = EXIT_INTERNAL;
    }
done:
    free(tmp);
    free(path);
    free(stem);
    return rc;
}

typedef struct output_ctx {
    const char *out_dir;
    int fmt;
} output_ctx;

static int write_file_output(const char *file, const char *body, void *ctx)
{
    const output_ctx *oc = ctx;
    return write_output(file, oc->out_dir, oc->fmt, body);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

static int parse_float(const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}


enum { OPT_VAD_THRESHOLD = 2000, OPT_VAD_NEG_THRESHOLD, OPT_VAD_MIN_SPEECH, OPT_VAD_MAX_SPEECH, OPT_VAD_MIN_SILENCE,
       OPT_VAD_SPEECH_PAD };
#define VAD_LONG_OPTIONS                                                                                          \
    {"vad-threshold", required_argument, 0, OPT_VAD_THRESHOLD},                                                  \
        {"vad-neg-threshold", required_argument, 0, OPT_VAD_NEG_THRESHOLD},                                      \
        {"vad-min-speech-ms", required_argument, 0, OPT_VAD_MIN_SPEECH},                                         \
        {"vad-max-speech-s", required_argument, 0, OPT_VAD_MAX_SPEECH},                                          \
        {"vad-min-silence-ms", required_argument, 0, OPT_VAD_MIN_SILENCE},                                       \
        {"vad-speech-pad-ms", required_argument, 0, OPT_VAD_SPEECH_PAD}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}

/* One of the --vad-* options: 1 parsed, 0 not a VAD option, -1 bad value (reported). */
static int parse_vad_option(int c, const char *arg, asr_vad_params *vp)
{
    int ok;
    switch (c) {
    case OPT_VAD_THRESHOLD: ok = parse_double(arg, 0.0, 1.0, &vp->threshold); break;
    case OPT_VAD_NEG_THRESHOLD: ok = parse_double(arg, 0.0, 1.0, &vp->neg_threshold); break;
    case OPT_VAD_MIN_SPEECH: ok = parse_int(arg, 0, 3600000, &vp->min_speech_duration_ms); break;
    case OPT_VAD_MAX_SPEECH: ok = parse_double(arg, 0.001, INFINITY, &vp->max_speech_duration_s); break;
    case OPT_VAD_MIN_SILENCE: ok = parse_int(arg, 0, 3600000, &vp->min_silence_duration_ms); break;
    case OPT_VAD_SPEECH_PAD: ok = parse_int(arg, 0, 3600000, &vp->speech_pad_ms); break;
    default: return 0;
    }
    if (!ok) {
        fprintf(stderr, "asr: bad value '%s' for a --vad-* option (see --help)\n", arg);
        return -1;
    }
    return 1;
}

static int cmd_transcribe(int argc, char **argv)
{
    enum { OPT_TASK = 1000, OPT_BEAM, OPT_BEST_OF, OPT_PATIENCE, OPT_TEMP, OPT_TEMP_INC, OPT_PROMPT,
           OPT_NO_COND, OPT_NO_TS, OPT_WORDS, OPT_PROGRESS, OPT_COMPUTE, OPT_MAX_DURATION, OPT_VAD, OPT_BATCH,
           OPT_JOBS };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},       {"language", required_argument, 0, 'l'},
        {"task", required_argument, 0, OPT_TASK},   {"beam-size", required_argument, 0, OPT_BEAM},
        {"best-of", required_argument, 0, OPT_BEST_OF}, {"patience", required_argument, 0, OPT_PATIENCE},
        {"temperature", required_argument, 0, OPT_TEMP},
        {"temperature-increment-on-fallback", required_argument, 0, OPT_TEMP_INC},
        {"prompt", required_argument, 0, OPT_PROMPT}, {"no-condition-on-previous-text", no_argument, 0, OPT_NO_COND},
        {"without-timestamps", no_argument, 0, OPT_NO_TS}, {"word-timestamps", no_argument, 0, OPT_WORDS},
        {"threads", required_argument, 0, 't'}, {"compute-type", required_argument, 0, OPT_COMPUTE},
        {"max-duration", required_argument, 0, OPT_MAX_DURATION},
        {"output-format", required_argument, 0, 'f'}, {"output-dir", required_argument, 0, 'o'},
        {"progress", no_argument, 0, OPT_PROGRESS}, {"help", no_argument, 0, 'h'},
        {"vad", no_argument, 0, OPT_VAD}, {"batch-size", required_argument, 0, OPT_BATCH},
        {"jobs", required_argument, 0, 'j'}, VAD_LONG_OPTIONS, {0, 0, 0, 0}};
    asr_transcribe_params tp = asr_transcribe_default_params();
    const char *model_arg = getenv("ASR_MODEL"), *out_dir = NULL, *compute = getenv("ASR_COMPUTE_TYPE");
    int fmt = ASR_FORMAT_TXT, threads = 0, jobs = 0, progress = isatty(STDERR_FILENO);
    float temperature = 0.0f, temp_inc = (float)SRV_TEMPERATURE_INCREMENT, max_duration = 0.0f;
    /* Local files are trusted no more than uploads: the default limits bound
     * how much memory one file can make the decoder allocate. */
    asr_audio_limits limits = asr_audio_default_limits();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:l:t:f:o:j:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_arg = optarg; break;
        case 'l': tp.language = optarg; break;
        case OPT_TASK:
            if (strcmp(optarg, "transcribe") == 0) tp.task = ASR_TASK_TRANSCRIBE;
            else if (strcmp(optarg, "translate") == 0) tp.task = ASR_TASK_TRANSLATE;
            else { fprintf(stderr, "asr: --task must be transcribe or translate\n"); return EXIT_USAGE; }
            break;
        case OPT_BEAM:
            if (!parse_int(optarg, 1, 16, &tp.beam_size)) { fprintf(stderr, "asr: --beam-size must be 1..16\n"); return EXIT_USAGE; }
            break;
        case OPT_BEST_OF:
            if (!parse_int(optarg, 1, 16, &tp.best_of)) { fprintf(stderr, "asr: --best-of must be 1..16\n"); return EXIT_USAGE; }
            break;
        case OPT_PATIENCE:
            if (!parse_float(optarg, 0.01f, 4.0f, &tp.patience)) { fprintf(stderr, "asr: bad --patience\n"); return EXIT_USAGE; }
            break;
        case OPT_TEMP:
            if (!parse_float(optarg, 0.0f, 2.0f, &temperature)) { fprintf(stderr, "asr: --temperature must be 0..2\n"); return EXIT_USAGE; }
            break;
        case OPT_TEMP_INC:
            if (!parse_float(optarg, 0.0f, 1.0f, &temp_inc)) { fprintf(stderr, "asr: bad --temperature-increment-on-fallback\n"); return EXIT_USAGE; }
            break;
        case OPT_PROMPT: tp.initial_prompt = optarg; break;
        case OPT_NO_COND: tp.condition_on_previous_text = 0; break;
        case OPT_NO_TS: tp.without_timestamps = 1; break;
        case OPT_WORDS: tp.word_timestamps = 1; break;
        case 't':
            if (!parse_int(optarg, 1, 256, &threads)) { fprintf(stderr, "asr: --threads must be 1..256\n"); return EXIT_USAGE; }
            break;
        case 'f':
            fmt = asr_format_parse(optarg);
            if (fmt < 0) { fprintf(stderr, "asr: unknown output format '%s' (txt|json|verbose_json|srt|vtt|tsv)\n", optarg); return EXIT_USAGE; }
            break;
        case 'o': out_dir = optarg; break;
        case 'j':
            if (!parse_int(optarg, 1, 64, &jobs)) { fprintf(stderr, "asr: --jobs must be 1..64\n"); return EXIT_USAGE; }
            break;
        case OPT_MAX_DURATION:
            if (!parse_float(optarg, 0.0f, 1e7f, &max_duration)) { fprintf(stderr, "asr: --max-duration must be 0..10000000 seconds\n"); return EXIT_USAGE; }
            limits.max_duration_s = max_duration;
            break;
        case OPT_PROGRESS: progress = 1; break;
        case OPT_COMPUTE: compute = optarg; break;
        case OPT_VAD: tp.vad_filter = 1; break;
        case OPT_BATCH:
            if (!parse_int(optarg, 1, 16, &tp.batch_size)) { fprintf(stderr, "asr: --batch-size must be 1..16\n"); return EXIT_USAGE; }
            tp.vad_filter = 1;
            break;
        case 'h': transcribe_usage(stdout); return EXIT_OK;
        default: {
            int v = parse_vad_option(c, optarg, &tp.vad);
            if (v < 0) return EXIT_USAGE;
            if (v == 0) { transcribe_usage(stderr); return EXIT_USAGE; }
        }
        }
    }
    int compute_type = compute && *compute ? asr_compute_type_parse(compute) : ASR_COMPUTE_AUTO;
    if (compute_type < 0) {
        fprintf(stderr, "asr: unknown compute type '%s' (auto|float32|float16|bfloat16|int8|int8_float32|"
                        "int8_bfloat16)\n", compute);
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "asr: no input files\n");
        transcribe_usage(stderr);
        return EXIT_USAGE;
    }
    tp.n_temperatures = srv_temperature_ladder(temperature, temp_inc, tp.temperatures, ASR_MAX_TEMPERATURES);
    if (out_dir) {
        int nrc = check_output_names(argv + optind, argc - optind);
        if (nrc != EXIT_OK) return nrc;
        struct stat st;
        if (stat(out_dir, &st) != 0 && mkdir(out_dir, 0777) != 0) {
            fprintf(stderr, "asr: cannot create %s: %s\n", out_dir, strerror(errno));
            return EXIT_USAGE;
        }
    }
    char model_path[4096];
    if (asr_cli_resolve_model(model_arg, model_path, sizeof model_path) != 0) return EXIT_BAD_INPUT;
    asr_error err;
    asr_model *model = NULL;
    asr_model_params mp = asr_model_default_params();
    mp.n_threads = threads;
    mp.compute_type = (asr_compute_type)compute_type;
    double t0 = srv_now();
    asr_status s = asr_model_load(model_path, &mp, &model, &err);
    if (s != ASR_OK) {
        fprintf(stderr, "asr: cannot load model %s: %s\n", model_path, err.message);
        return exit_code_for(s);
    }
    if (progress)
        fprintf(stderr, "asr: loaded %s model (%s) from %s in %.2f s\n", asr_model_type(model),
                asr_compute_type_name(asr_model_compute_type(model)), model_path, srv_now() - t0);
    output_ctx oc = {out_dir, fmt};
    if (jobs == 0) jobs = tp.batch_size > 0 ? 1 : 4; /* a batch holds N windows' buffers already */
    cli_files run = {.model = model, .tp = &tp, .limits = &limits, .fmt = fmt, .progress = progress, .jobs = jobs,
                     .write = write_file_output, .write_ctx = &oc};
    int rc = cli_transcribe_files(&run, argv + optind, argc - optind);
    asr_model_free(model);
    return rc;
}


static void vad_usage(FILE *f)
{
    fprintf(f,
            "usage: asr vad FILE [options]\n"
            "\n"
            "Finds the speech in FILE with Silero VAD v6 and prints one line per speech chunk,\n"
            "start and end in seconds (faster-whisper's get_speech_timestamps).\n"
            "\n"
            "      --json                 print {\"duration\", \"frame_samples\", \"probs\", \"segments\"} instead:\n"
            "                             the probability of every 512-sample frame, chunks in samples\n"
            "      --weights FILE         VAD weights from FILE (tools/convert_silero_vad.py) instead of the built-in\n"
            VAD_OPTIONS_HELP
            "\n"
            "exit status: 0 ok, 1 internal error, 2 usage error, 3 bad input (audio or weights)\n");
}

static int cmd_vad(int argc, char **argv)
{
    enum { OPT_JSON = 1000, OPT_WEIGHTS };
    static const struct option opts[] = {{"json", no_argument, 0, OPT_JSON}, {"weights", required_argument, 0, OPT_WEIGHTS},
                                         {"help", no_argument, 0, 'h'}, VAD_LONG_OPTIONS, {0, 0, 0, 0}};
    asr_vad_params vp = asr_vad_default_params();
    const char *weights = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: json = 1; break;
        case OPT_WEIGHTS: weights = optarg; break;
        case 'h': vad_usage(stdout); return EXIT_OK;
        default: {
            int v = parse_vad_option(c, optarg, &vp);
            if (v < 0) return EXIT_USAGE;
            if (v == 0) { vad_usage(stderr); return EXIT_USAGE; }
        }
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "asr vad: give one input file\n");
        vad_usage(stderr);
        return EXIT_USAGE;
    }
    const char *file = argv[optind];
    asr_error err;
    asr_vad_model *vad = NULL;
    asr_status s = asr_vad_model_load(weights, &vad, &err);
    if (s != ASR_OK) {
        fprintf(stderr, "asr vad: %s\n", err.message);
        return exit_code_for(s);
    }
    asr_audio audio = {0};
    float *probs = NULL;
    size_t n_probs = 0, n_segs = 0;
    asr_vad_segment *segs = NULL;
    s = asr_audio_decode_file(file, NULL, &audio, &err);
    if (s == ASR_OK) s = asr_vad_probs(vad, audio.samples, audio.n_samples, &probs, &n_probs, &err);
    if (s == ASR_OK) s = asr_vad_segments_from_probs(probs, n_probs, audio.n_samples, &vp, &segs, &n_segs, &err);
    asr_vad_model_free(vad);
    if (s != ASR_OK) {
        fprintf(stderr, "asr vad: %s: %s\n", file, err.message);
        asr_audio_free(&audio);
        free(probs);
        return exit_code_for(s);
    }
    const double sr = ASR_SAMPLE_RATE;
    if (json) {
        printf("{\"duration\": %.6f, \"frame_samples\": %d, \"probs\": [", audio.n_samples / sr, ASR_VAD_FRAME_SAMPLES);
        for (size_t i = 0; i < n_probs; i++) printf("%s%.9g", i ? ", " : "", probs[i]);
        printf("], \"segments\": [");
        for (size_t i = 0; i < n_segs; i++)
            printf("%s{\"start\": %zu, \"end\": %zu}", i ? ", " : "", segs[i].start, segs[i].end);
        printf("]}\n");
    } else {
        for (size_t i = 0; i < n_segs; i++) printf("%.3f\t%.3f\n", segs[i].start / sr, segs[i].end / sr);
    }
    fflush(stdout);
    int rc = ferror(stdout) ? EXIT_INTERNAL : EXIT_OK;
    asr_audio_free(&audio);
    free(probs);
    free(segs);
    return rc;
}

static int cmd_convert(int argc, char **argv)
{
    static const char usage_line[] = "usage: asr convert MODEL OUT.bin [--f16|--f32|--q8_0]\n";
    int format = ASR_GGML_F16;
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--f32") == 0) format = ASR_GGML_F32;
        else if (strcmp(argv[i], "--f16") == 0) format = ASR_GGML_F16;
        else if (strcmp(argv[i], "--q8_0") == 0) format = ASR_GGML_Q8_0;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("%sWrites MODEL (name or path) as a whisper.cpp ggml file: matrices f16 (default), f32, or\n"
                   "q8_0 (ggml's int8 blocks, what whisper.cpp's int8 CPU kernels read).\n", usage_line);
            return EXIT_OK;
        } else if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else { fprintf(stderr, "asr convert: unexpected argument '%s'\n", argv[i]); return EXIT_USAGE; }
    }
    if (!in || !out) {
        fputs(usage_line, stderr);
        return EXIT_USAGE;
    }
    char model_path[4096];
    if (asr_cli_resolve_model(in, model_path, sizeof model_path) != 0) return EXIT_BAD_INPUT;
    asr_error err;
    asr_model *model = NULL;
    /* the weights as stored: float32 encoder, half decoder (an export
     * needs them unquantised, whatever auto would pick on this CPU) */
    asr_model_params mp = asr_model_default_params();
    mp.compute_type = ASR_COMPUTE_FLOAT32;
    asr_status s = asr_model_load(model_path, &mp, &model, &err);
    if (s == ASR_OK) s = asr_model_write_ggml(model, out, format, &err);
    asr_model_free(model);
    if (s != ASR_OK) {
        fprintf(stderr, "asr convert: %s\n", err.message);
        return exit_code_for(s);
    }
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("asr %s\n", ASR_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "transcribe") == 0) return cmd_transcribe(argc - 1, argv + 1);
    if (strcmp(cmd, "vad") == 0) return cmd_vad(argc - 1, argv + 1);
    if (strcmp(cmd, "models") == 0) return asr_cli_models(argc - 1, argv + 1);
    if (strcmp(cmd, "convert") == 0) return cmd_convert(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0) return asr_cli_serve(argc - 1, argv + 1);
    fprintf(stderr, "asr: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
