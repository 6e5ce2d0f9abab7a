"""Deterministic tokenizer test corpus: hand-written edge cases + seeded template/random mixing."""
import random

LESSON = [
    "A motorcycle sits parked across from a herd of livestock",
    "Motorcycle on platform to be worked on in garage",
    "a cat laying down stretched out near a laptop",
]

EDGE = LESSON + [
    "a bunch of cats laying on a tower.",
    "a bunch of <mask> laying on a tower.",
    "what's in the image",
    "two dogs in a car",
    "two cats sleeping on a couch",
    "a photo of a fox",
    "hello world",
    "this is a test string of text",
    "a photo of a really, functistaner big cat.",
    "",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "a",
    "A",
    "I",
    " leading space",
    "   three leading spaces",
    "trailing space ",
    "trailing spaces   ",
    "double  space",
    "tab\tseparated\tvalues",
    "line one\nline two\n\nline four",
    "carriage\rreturn",
    "non\u00a0breaking\u00a0space",
    "thin\u2009space and em\u2003space",
    "ideographic\u3000space",
    "zero\u200bwidth\u200bspace",
    "zero\u200cwidth\u200dnon-joiner and joiner",
    "\ufeffBOM at start",
    "line\u2028separator and paragraph\u2029separator",
    "next\u0085line",
    "ogham\u1680space mongolian\u180evowel",
    "I'm here, you're there, he's gone, we've won, they'll see, she'd know, it's fine.",
    "DON'T SHOUT, I'M LISTENING",
    "don\u2019t use curly \u2018quotes\u2019 or \u201cdouble\u201d ones",
    "rock 'n' roll",
    "'s 't 're 've 'm 'll 'd",
    "the dog's bone and the dogs' bones",
    "!!!",
    "?!?!?!",
    "...",
    "\u2026 ellipsis",
    "wait---what?",
    "em\u2014dash and en\u2013dash",
    "***bold*** and ___under___",
    "(parentheses) [brackets] {braces} <angles>",
    "@user #hashtag $100 %50 ^caret &amp; *star",
    "a+b=c; x-y/z\\w|v~u`t",
    "12345",
    "3.14159265358979",
    "1,000,000",
    "0.000001",
    "-42",
    "1e-10",
    "2024-06-11T12:34:56Z",
    "+1 (555) 123-4567",
    "\u0663\u0664\u0665 arabic-indic digits",
    "\u00bd \u00bc \u00be fractions",
    "x\u00b2 + y\u00b3 superscripts",
    "\u2460\u2461\u2462 circled",
    "\u2167 roman numeral eight",
    "caf\u00e9",
    "cafe\u0301",
    "na\u00efve r\u00e9sum\u00e9 fa\u00e7ade",
    "\u00c5ngstr\u00f6m",
    "A\u030angstro\u0308m",
    "e\u0301\u0301\u0301 stacked accents",
    "Z\u0335\u0321a\u0337\u031bl\u0338g\u0334o\u0336 text",
    "Stra\u00dfe",
    "STRASSE",
    "\u0130stanbul ve \u0131\u015f\u0131k",
    "\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3 final sigma",
    "\u1e9e capital sharp s",
    "\ufb01ligature \ufb02ow",
    "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 fullwidth",
    "\u00c0\u00c1\u00c2\u00c3\u00c4\u00c5\u00c6\u00c7\u00c8\u00c9",
    "\U0001f600",
    "\U0001f44d\U0001f3fd",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
    "\U0001f1eb\U0001f1f7 flag",
    "\u2764\ufe0f heart",
    "I love \U0001f355 and \U0001f363!!",
    "\U0001f431\U0001f431\U0001f431",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u732b\u304c\u30ce\u30fc\u30c8\u30d1\u30bd\u30b3\u30f3\u306e\u8fd1\u304f\u3067\u5bdd\u3066\u3044\u308b",
    "mixed \u4e2d\u6587 and English",
    "\U00020000\U0002a6d6 CJK extension B",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u0627\u0644\u0642\u0637\u0629 \u062a\u062c\u0644\u0633 \u0628\u062c\u0627\u0646\u0628 \u0627\u0644\u062d\u0627\u0633\u0648\u0628",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
    "<s>",
    "</s>",
    "<pad>",
    "<unk>",
    "<mask>",
    "a <mask> b",
    "a<mask>b",
    "<s>a cat</s>",
    "<|endoftext|>",
    "<|startoftext|>a photo<|endoftext|>",
    "<|ENDOFTEXT|>",
    "[CLS] [SEP] [MASK] [PAD] [UNK]",
    "[cls] lower case brackets",
    "&amp; &lt;b&gt; &#39; html entities",
    "https://example.com/path?query=1&x=y#frag",
    "user@example.com",
    "def f(x):\n    return x ** 2  # square",
    "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
    "C:\\Users\\name\\file.txt",
    "\x00nul\x00",
    "bell\x07 and escape\x1b[31m red \x1b[0m",
    "\x7f delete",
    "\u00ad soft\u00adhyphen",
    "\ufffd replacement char",
    "\U000e0041 tag char",
    "\ue000 private use",
    "the the the the the the the the the the the the the the the the",
    "a" * 300,
    "1" * 300,
    "ab" * 150,
    "\U0001f600" * 100,
    "!" * 200,
    " " * 50 + "x",
    "x" + "\n" * 20 + "y",
]

SUBJECTS = ["a cat", "the dog", "two motorcycles", "a herd of livestock", "an old man", "a young woman", "three kids",
            "a red car", "the bicycle", "a laptop", "some pizza", "a giraffe", "the train", "a small boat", "an airplane",
            "a horse", "the astronaut", "a cup of coffee", "the rocket", "a teddy bear"]
VERBS = ["sits", "is parked", "is laying", "stands", "is sleeping", "runs", "is stretched out", "waits", "flies",
         "is being worked on", "looks", "rests", "is displayed", "jumps"]
PLACES = ["near a laptop", "in a garage", "across from a herd of livestock", "on a platform", "on a couch",
          "in the snow", "by the beach", "under a tree", "next to a window", "on a busy street", "in a kitchen",
          "at the airport", "on the grass", "inside a car", "on top of a tower"]
EXTRAS = ["", ".", "!", "?", " at night", " during the day", " in 2019", " with 3 friends", ", looking happy",
          " (blurry photo)", " \u2014 close-up", " :)", " \U0001f642", " #nofilter", " ...", "'s shadow"]
WORDS = ["hello", "world", "caf\u00e9", "na\u00efve", "Stra\u00dfe", "\u65e5\u672c", "\u732b", "\u0645\u0631\u062d\u0628\u0627",
         "\u05e9\u05dc\u05d5\u05dd", "\u041c\u043e\u0441\u043a\u0432\u0430", "\u0394\u03ad\u03bb\u03c4\u03b1",
         "\U0001f600", "\U0001f44d\U0001f3fd", "don't", "I'll", "we're", "it's", "O'Neil", "e-mail", "co-op", "U.S.A.",
         "3.5", "1,024", "42", "\u00bd", "x\u00b2", "\u2163", "a\u0301", "\u200b", "\u00a0", "\t", "  ", "\n", "<mask>",
         "<s>", "</s>", "<|endoftext|>", "[SEP]", "&amp;", "http://x.y/z", "#tag", "@name", "...", "!!", "--", "\u2014",
         "\u201cquoted\u201d", "'single'", "(paren)", "snake_case", "camelCase", "UPPER", "MiXeD", "\ufb01ne",
         "\uff21\uff22\uff23", "\u0130", "\u03a3", "\u1e9e", "\u00c5", "\u3000", "\u2028", "\x07", "\ufeff"]
RANGES = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF),
          (0x900, 0x97F), (0xE00, 0xE7F), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x2190, 0x23FF), (0x3040, 0x30FF),
          (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF),
          (0x300, 0x36F)]


def build(seed=1234, n_total=5200):
    rng = random.Random(seed)
    out = list(EDGE)
    # very long texts (truncation tests; > 512 and > 77 tokens)
    long_sent = " ".join(LESSON) + ". "
    out.append(long_sent * 40)
    out.append(("The quick brown fox jumps over the lazy dog; " * 60).strip())
    out.append(" ".join(rng.choice(WORDS) for _ in range(700)))
    while len(out) < n_total:
        kind = rng.random()
        if kind < 0.45:
            s = "%s %s %s%s" % (rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(PLACES), rng.choice(EXTRAS))
            r = rng.random()
            if r < 0.15:
                s = s.capitalize()
            elif r < 0.22:
                s = s.upper()
            elif r < 0.27:
                s = s.title()
        elif kind < 0.75:
            s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
            if rng.random() < 0.3:
                s = s.replace(" ", rng.choice(["", "  ", "\t", "-", "\u00a0", "\n"]))
        elif kind < 0.9:
            lo, hi = rng.choice(RANGES)
            s = "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 16)))
            if rng.random() < 0.5:
                lo2, hi2 = rng.choice(RANGES)
                s += " " + "".join(chr(rng.randint(lo2, hi2)) for _ in range(rng.randint(1, 8)))
        else:
            s = rng.choice([
                "%d" % rng.randint(0, 10**rng.randint(1, 15)),
                "%.*f" % (rng.randint(0, 6), rng.uniform(-1000, 1000)),
                "%d items at $%d.%02d" % (rng.randint(1, 99), rng.randint(0, 999), rng.randint(0, 99)),
                "%s%s" % (rng.choice(SUBJECTS), "!" * rng.randint(1, 6)),
                "%s's %s" % (rng.choice(["John", "Mary", "the cat", "IT", "O'Brien"]), rng.choice(WORDS)),
            ])
        out.append(s)
    # indices used for the padded batch goldens: varied lengths incl. empty and long
    batch_idx = [0, 1, 2, 3, 9, 12, 17, 40, 60, 88, 100, 120]
    batch_idx += [len(EDGE), len(EDGE) + 1]  # the two long texts (truncated in the batch)
    batch_idx += list(range(len(EDGE) + 3, len(EDGE) + 3 + 18))
    return out, batch_idx
