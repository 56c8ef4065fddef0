/* lang.c — Whisper's language table: codes, English names and aliases. */
#include "internal.h"

#include <strings.h>

/* openai/whisper tokenizer.py LANGUAGES, in its order: a language's token
 * is <|startoftranscript|> + 1 + its index, so the order is part of the
 * model. The first 99 are the original models'; "yue" came with large-v3. */
static const struct {
    const char *code, *name;
} languages[] = {
    {"en", "english"}, {"zh", "chinese"}, {"de", "german"}, {"es", "spanish"},
    {"ru", "russian"}, {"ko", "korean"}, {"fr", "french"}, {"ja", "japanese"},
    {"pt", "portuguese"}, {"tr", "turkish"}, {"pl", "polish"}, {"ca", "catalan"},
    {"nl", "dutch"}, {"ar", "arabic"}, {"sv", "swedish"}, {"it", "italian"},
    {"id", "indonesian"}, {"hi", "hindi"}, {"fi", "finnish"}, {"vi", "vietnamese"},
    {"he", "hebrew"}, {"uk", "ukrainian"}, {"el", "greek"}, {"ms", "malay"},
    {"cs", "czech"}, {"ro", "romanian"}, {"da", "danish"}, {"hu", "hungarian"},
    {"ta", "tamil"}, {"no", "norwegian"}, {"th", "thai"}, {"ur", "urdu"},
    {"hr", "croatian"}, {"bg", "bulgarian"}, {"lt", "lithuanian"}, {"la", "latin"},
    {"mi", "maori"}, {"ml", "malayalam"}, {"cy", "welsh"}, {"sk", "slovak"},
    {"te", "telugu"}, {"fa", "persian"}, {"lv", "latvian"}, {"bn", "bengali"},
    {"sr", "serbian"}, {"az", "azerbaijani"}, {"sl", "slovenian"}, {"kn", "kannada"},
    {"et", "estonian"}, {"mk", "macedonian"}, {"br", "breton"}, {"eu", "basque"},
    {"is", "icelandic"}, {"hy", "armenian"}, {"ne", "nepali"}, {"mn", "mongolian"},
    {"bs", "bosnian"}, {"kk", "kazakh"}, {"sq", "albanian"}, {"sw", "swahili"},
    {"gl", "galician"}, {"mr", "marathi"}, {"pa", "punjabi"}, {"si", "sinhala"},
    {"km", "khmer"}, {"sn", "shona"}, {"yo", "yoruba"}, {"so", "somali"},
    {"af", "afrikaans"}, {"oc", "occitan"}, {"ka", "georgian"}, {"be", "belarusian"},
    {"tg", "tajik"}, {"sd", "sindhi"}, {"gu", "gujarati"}, {"am", "amharic"},
    {"yi", "yiddish"}, {"lo", "lao"}, {"uz", "uzbek"}, {"fo", "faroese"},
    {"ht", "haitian creole"}, {"ps", "pashto"}, {"tk", "turkmen"}, {"nn", "nynorsk"},
    {"mt", "maltese"}, {"sa", "sanskrit"}, {"lb", "luxembourgish"}, {"my", "myanmar"},
    {"bo", "tibetan"}, {"tl", "tagalog"}, {"mg", "malagasy"}, {"as", "assamese"},
    {"tt", "tatar"}, {"haw", "hawaiian"}, {"ln", "lingala"}, {"ha", "hausa"},
    {"ba", "bashkir"}, {"jw", "javanese"}, {"su", "sundanese"}, {"yue", "cantonese"},
};

#define N_LANGUAGES ((int)(sizeof languages / sizeof languages[0]))

/* TO_LANGUAGE_CODE's extra names (whisper accepts them for --language), and
 * "iw", the old code for Hebrew that Hugging Face vocabularies (and so
 * CTranslate2 models) still use for the <|he|> token. */
static const struct {
    const char *alias, *code;
} aliases[] = {
    {"burmese", "my"},   {"valencian", "ca"}, {"flemish", "nl"},  {"haitian", "ht"},
    {"letzeburgesch", "lb"}, {"pushto", "ps"}, {"panjabi", "pa"}, {"moldavian", "ro"},
    {"moldovan", "ro"},  {"sinhalese", "si"}, {"castilian", "es"}, {"mandarin", "zh"},
    {"iw", "he"},
};

int asr_lang_count(void)
{
    return N_LANGUAGES;
}

const char *asr_lang_code(int index)
{
    return index >= 0 && index < N_LANGUAGES ? languages[index].code : NULL;
}

const char *asr_lang_name(int index)
{
    return index >= 0 && index < N_LANGUAGES ? languages[index].name : NULL;
}

int asr_lang_find(const char *code_or_name)
{
    if (!code_or_name) return -1;
    for (int i = 0; i < N_LANGUAGES; i++)
        if (strcasecmp(code_or_name, languages[i].code) == 0 || strcasecmp(code_or_name, languages[i].name) == 0)
            return i;
    for (size_t a = 0; a < sizeof aliases / sizeof aliases[0]; a++)
        if (strcasecmp(code_or_name, aliases[a].alias) == 0) return asr_lang_find(aliases[a].code);
    return -1;
}
