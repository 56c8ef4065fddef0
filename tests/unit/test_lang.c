/* test_lang.c — the language table against the model's own special tokens
 * (<|xx|> = <|startoftranscript|> + 1 + index), names and aliases. Needs the
 * tiny.en model directory: $ASR_TEST_MODEL, else ~/.cache/asr/models/tiny.en. */
#include "check.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int main(void)
{
    CHECK(asr_lang_count() == 100, "100 languages (%d)", asr_lang_count());
    CHECK(strcmp(asr_lang_code(0), "en") == 0 && strcmp(asr_lang_name(0), "english") == 0, "index 0 is english");
    CHECK(strcmp(asr_lang_code(1), "zh") == 0, "index 1 is zh");
    CHECK(strcmp(asr_lang_code(98), "su") == 0 && strcmp(asr_lang_name(98), "sundanese") == 0, "index 98 is su");
    CHECK(strcmp(asr_lang_code(99), "yue") == 0 && strcmp(asr_lang_name(99), "cantonese") == 0, "index 99 is yue");
    CHECK(asr_lang_code(100) == NULL && asr_lang_code(-1) == NULL, "codes out of range are NULL");
    CHECK(asr_lang_name(100) == NULL && asr_lang_name(-1) == NULL, "names out of range are NULL");

    /* The vocabulary lists the 99 language tokens in the table's order. */
    char dir[4096];
    const char *env = getenv("ASR_TEST_MODEL");
    if (env && *env)
        snprintf(dir, sizeof dir, "%s", env);
    else
        snprintf(dir, sizeof dir, "%s/.cache/asr/models/tiny.en", getenv("HOME") ? getenv("HOME") : "");
    asr_error err;
    asr_tokenizer *tok = NULL;
    CHECK(asr_tokenizer_load_dir(dir, &tok, &err) == ASR_OK, "load %s: %s", dir, err.message);
    if (tok) {
        int sot = asr_tokenizer_find(tok, "<|startoftranscript|>"), in_order = 0;
        for (int i = 0; i < 99; i++) {
            char text[16];
            /* (Hebrew is <|iw|> in this vocabulary; find maps <|he|> to it.) */
            snprintf(text, sizeof text, "<|%s|>", asr_lang_code(i));
            in_order += asr_tokenizer_find(tok, text) == sot + 1 + i;
        }
        CHECK(sot == 50257 && in_order == 99, "language tokens follow the table (%d of 99)", in_order);
        asr_tokenizer_free(tok);
    }

    int distinct = 1;
    for (int i = 0; i < asr_lang_count(); i++) {
        distinct &= asr_lang_find(asr_lang_code(i)) == i && asr_lang_find(asr_lang_name(i)) == i;
    }
    CHECK(distinct, "every code and name finds its own index");
    CHECK(asr_lang_find("EN") == 0 && asr_lang_find("English") == 0 && asr_lang_find("GERMAN") == 2, "case-insensitive");
    CHECK(asr_lang_find("haitian creole") == asr_lang_find("ht"), "names with spaces");
    static const struct { const char *alias, *code; } aliases[] = {
        {"burmese", "my"}, {"valencian", "ca"}, {"flemish", "nl"}, {"haitian", "ht"},
        {"letzeburgesch", "lb"}, {"pushto", "ps"}, {"panjabi", "pa"}, {"moldavian", "ro"},
        {"moldovan", "ro"}, {"sinhalese", "si"}, {"Castilian", "es"}, {"MANDARIN", "zh"},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        int want = asr_lang_find(aliases[i].code);
        CHECK(want >= 0 && asr_lang_find(aliases[i].alias) == want, "alias %s → %s", aliases[i].alias, aliases[i].code);
    }
    CHECK(asr_lang_find("iw") == asr_lang_find("he"), "iw, the old code for Hebrew");
    CHECK(asr_lang_find("auto") == -1, "auto is not a language");
    CHECK(asr_lang_find("") == -1, "empty string");
    CHECK(asr_lang_find("e") == -1 && asr_lang_find("eng") == -1 && asr_lang_find("en ") == -1, "no prefix or padded matches");
    CHECK(asr_lang_find("klingon") == -1, "unknown language");
    CHECK(asr_lang_find(NULL) == -1, "NULL");
    return CHECK_DONE();
}
