/* The option table's parser and printers: a command's of_cli_spec table
 * (groups flattened) becomes getopt_long's tables, its usage line, its
 * --help and its usage errors. What a hook does is its table's business
 * (cli.c for the shared groups, cmd_*.c for their own). */
#include <assert.h>
#include <ctype.h>
#include <getopt.h>
#include <string.h>

#include "orderflow/cli.h"
#include "orderflow/error.h"

#define WIDTH     79 /* columns of --help at most */
#define LABEL_MAX 26 /* a longer option label gets a line of its own */
#define VAL_BASE                                                              \
        256 /* getopt_long's value of a long-only option:                     \
             * VAL_BASE + its index, beyond any letter */

/* The one option every command has, last. */
static const of_cli_spec help_spec =
        OF_CLI_OPT_CALL("help", 'h', 0, NULL, NULL, "print this help");

/* One spec of a command's tables with where its table's struct is. */
typedef struct opt {
        const of_cli_spec *spec;
        char *base;           /* the struct being filled; NULL: printing */
        const char *defaults; /* the same in cmd->defaults; may be NULL */
} opt;

/* A command's tables flattened, and what getopt_long takes. */
typedef struct table {
        opt opts[OF_CLI_MAX_OPTS];
        size_t n;
        struct option longopts[OF_CLI_MAX_OPTS + 1];
        char shortopts[3 * OF_CLI_MAX_OPTS + 2];
} table;

static int takes_value(const of_cli_spec *s)
{
        return s->kind == OF_CLI_INT || s->kind == OF_CLI_DURATION ||
               s->kind == OF_CLI_STRING ||
               (s->kind == OF_CLI_CALL && s->value_name);
}

static void flatten(table *t, const of_cli_spec *specs, char *base,
                    const char *defaults)
{
        const of_cli_spec *s;

        for (s = specs; s->kind != OF_CLI_END; s++) {
                if (s->kind == OF_CLI_GROUP) {
                        flatten(t, s->group, base ? base + s->offset : NULL,
                                defaults ? defaults + s->offset : NULL);
                        continue;
                }
                assert(t->n < OF_CLI_MAX_OPTS);
                t->opts[t->n++] = (opt){s, base, defaults};
        }
}

/* cmd's tables into t, with getopt_long's: each option's value is its
 * letter, or VAL_BASE + its index when it has none. */
static void table_init(table *t, const of_cli_cmd *cmd, char *base)
{
        const of_cli_spec *s;
        size_t i, nlong = 0, nshort = 0;

        t->n = 0;
        flatten(t, cmd->specs, base, cmd->defaults);
        assert(t->n < OF_CLI_MAX_OPTS);
        t->opts[t->n++] = (opt){&help_spec, NULL, NULL};
        t->shortopts[nshort++] = ':'; /* ':' for a missing argument */
        for (i = 0; i < t->n; i++) {
                s = t->opts[i].spec;
                if (s->kind == OF_CLI_OPERAND)
                        continue;
                if (s->name)
                        t->longopts[nlong++] = (struct option){
                                s->name,
                                takes_value(s) ? required_argument
                                               : no_argument,
                                NULL, s->alias ? s->alias : VAL_BASE + (int)i};
                if (s->alias) {
                        t->shortopts[nshort++] = s->alias;
                        if (takes_value(s))
                                t->shortopts[nshort++] = ':';
                }
        }
        t->longopts[nlong] = (struct option){0};
        t->shortopts[nshort] = '\0';
}

/* The option as messages name it: "--name", or "-c" when it has no long
 * name, or an operand's value name. */
static const char *display(char *out, size_t size, const of_cli_spec *s)
{
        if (s->name)
                snprintf(out, size, "--%s", s->name);
        else if (s->alias)
                snprintf(out, size, "-%c", s->alias);
        else
                snprintf(out, size, "%s", s->value_name);
        return out;
}

/* ---- Parsing ---- */

/* An integer field is 4 or 8 bytes (int; int64_t, size_t). */
static void store_int(void *field, size_t size, int64_t v)
{
        int32_t v32 = (int32_t)v;

        assert(size == sizeof(v32) || size == sizeof(v));
        if (size == sizeof(v32))
                memcpy(field, &v32, size);
        else
                memcpy(field, &v, size);
}

static int64_t load_int(const void *field, size_t size)
{
        int32_t v32;
        int64_t v;

        assert(size == sizeof(v32) || size == sizeof(v));
        if (size == sizeof(v32)) {
                memcpy(&v32, field, size);
                return v32;
        }
        memcpy(&v, field, size);
        return v;
}

/* Check arg against s's bounds: 0, or OF_EXIT_USAGE (printed). */
static int check_string(const of_cli_spec *s, const char *cmd,
                        const char *name, const char *arg)
{
        char what[64];
        size_t i;

        if (s->min > 0 && !*arg) {
                for (i = 0; s->value_name[i] && i + 1 < sizeof(what); i++)
                        what[i] =
                                (char)tolower((unsigned char)s->value_name[i]);
                what[i] = '\0';
                return of_cli_usage(cmd, "%s: empty %s", name, what);
        }
        if (s->max > 0 && strlen(arg) > (size_t)s->max)
                return of_cli_usage(cmd, "%s: longer than %lld bytes", name,
                                    (long long)s->max);
        return 0;
}

/* Fill o's field from arg (NULL for a flag) and run its hook: 0, or
 * OF_EXIT_USAGE (printed). */
static int take(const opt *o, const char *cmd, const char *arg)
{
        const of_cli_spec *s = o->spec;
        char *field = o->base ? o->base + s->offset : NULL, name[80];
        int64_t v;
        int rc;

        display(name, sizeof(name), s);
        switch (s->kind) {
        case OF_CLI_FLAG:
                store_int(field, s->size, 1);
                break;
        case OF_CLI_INT:
                if (of_cli_parse_int(&v, arg, s->min, s->max))
                        return of_cli_usage(cmd,
                                            "%s: not an integer from "
                                            "%lld to %lld",
                                            name, (long long)s->min,
                                            (long long)s->max);
                store_int(field, s->size, v);
                break;
        case OF_CLI_DURATION:
                if (of_cli_parse_duration(&v, arg))
                        return of_cli_usage(cmd,
                                            "%s: %s: not a duration "
                                            "like 90m, 36h or 7d (at "
                                            "least 1s)",
                                            name, arg);
                store_int(field, s->size, v);
                break;
        case OF_CLI_STRING:
        case OF_CLI_OPERAND:
                if ((rc = check_string(s, cmd, name, arg)))
                        return rc;
                assert(s->size == sizeof(arg));
                memcpy(field, &arg, sizeof(arg));
                break;
        default:
                break;
        }
        return s->hook ? s->hook(o->base, cmd, arg) : 0;
}

/* The usage error for getopt_long's '?' or ':' (opterr = 0 and a leading
 * ':' in the short options), naming the option as it was given. */
static int bad_option(const char *cmd, int c, char **argv)
{
        const char *arg = argv[optind - 1];

        if (c == ':')
                return of_cli_usage(cmd, "%s: missing argument", arg);
        if (optopt && optopt < VAL_BASE && strncmp(arg, "--", 2))
                return of_cli_usage(cmd, "-%c: unknown option", optopt);
        return of_cli_usage(cmd, "%s: unknown option", arg);
}

static const opt *find(const table *t, int c)
{
        size_t i;

        if (c >= VAL_BASE)
                return &t->opts[c - VAL_BASE];
        for (i = 0; i < t->n && t->opts[i].spec->alias != c; i++)
                ;
        assert(i < t->n);
        return &t->opts[i];
}

/* After the options: the operands in table order, then what is absent.
 * seen[i] tells whether t->opts[i] was given. */
static int finish(const table *t, const char *cmd, unsigned char *seen,
                  int argc, char **argv)
{
        const of_cli_spec *s;
        char name[80];
        size_t i;
        int rc;

        for (i = 0; i < t->n && optind < argc; i++) {
                if (t->opts[i].spec->kind != OF_CLI_OPERAND)
                        continue;
                if ((rc = take(&t->opts[i], cmd, argv[optind++])))
                        return rc;
                seen[i] = 1;
        }
        if (optind < argc)
                return of_cli_usage(cmd, "%s: unexpected argument",
                                    argv[optind]);
        for (i = 0; i < t->n; i++) {
                s = t->opts[i].spec;
                if (seen[i] || !(s->flags & OF_CLI_REQUIRED))
                        continue;
                if (s->kind == OF_CLI_OPERAND)
                        return of_cli_usage(cmd, "missing %s", s->help);
                return of_cli_usage(cmd, "%s: required",
                                    display(name, sizeof(name), s));
        }
        return 0;
}

int of_cli_parse(int *out_exit, const of_cli_cmd *cmd, void *base, int argc,
                 char **argv)
{
        unsigned char seen[OF_CLI_MAX_OPTS] = {0};
        const opt *o;
        table t;
        int c;

        table_init(&t, cmd, base);
        opterr = 0;
        optind = 0; /* glibc: start afresh, even after an earlier parse */
        while ((c = getopt_long(argc, argv, t.shortopts, t.longopts, NULL)) !=
               -1) {
                if (c == '?' || c == ':') {
                        *out_exit = bad_option(cmd->name, c, argv);
                        return 1;
                }
                o = find(&t, c);
                if (o->spec == &help_spec) {
                        *out_exit = of_cli_help(cmd);
                        return 1;
                }
                if ((*out_exit = take(o, cmd->name, optarg)))
                        return 1;
                seen[o - t.opts] = 1;
        }
        *out_exit = finish(&t, cmd->name, seen, argc, argv);
        return *out_exit != 0;
}

/* ---- Usage and help ---- */

/* Print the n bytes at s at column *at, after a blank unless *at is col
 * (a line's start); on a new line indented to col when they would pass
 * WIDTH. */
static void put_item(FILE *f, size_t *at, size_t col, const char *s, size_t n)
{
        if (*at > col && *at + 1 + n > WIDTH) {
                fprintf(f, "\n%*s", (int)col, "");
                *at = col;
        }
        if (*at != col) {
                putc(' ', f);
                (*at)++;
        }
        fwrite(s, 1, n, f);
        *at += n;
}

/* text's words from column *at, wrapped as put_item() does. */
static void put_words(FILE *f, size_t *at, size_t col, const char *text)
{
        size_t n;

        for (text += strspn(text, " "); *text; text += strspn(text, " ")) {
                n = strcspn(text, " ");
                put_item(f, at, col, text, n);
                text += n;
        }
}

/* s in the usage line: "--db PATH", "[-b LIST]", "[-X key=value]...". */
static void usage_item(char *out, size_t size, const of_cli_spec *s)
{
        int optional = !(s->flags & OF_CLI_REQUIRED);
        char key[80];

        if (s->kind == OF_CLI_OPERAND)
                snprintf(key, sizeof(key), "%s", s->value_name);
        else if (s->alias)
                snprintf(key, sizeof(key), "-%c%s%s", s->alias,
                         takes_value(s) ? " " : "",
                         takes_value(s) ? s->value_name : "");
        else
                snprintf(key, sizeof(key), "--%s%s%s", s->name,
                         takes_value(s) ? " " : "",
                         takes_value(s) ? s->value_name : "");
        snprintf(out, size, "%s%s%s%s", optional ? "[" : "", key,
                 optional ? "]" : "", s->flags & OF_CLI_REPEAT ? "..." : "");
}

static void usage_print(FILE *f, const of_cli_cmd *cmd, const table *t)
{
        char item[200];
        size_t at, col, i;

        at = (size_t)fprintf(f, "usage: orderflow %s", cmd->name);
        col = at + 1;
        for (i = 0; i < t->n; i++) {
                if (t->opts[i].spec == &help_spec)
                        continue;
                usage_item(item, sizeof(item), t->opts[i].spec);
                put_item(f, &at, col, item, strlen(item));
        }
        putc('\n', f);
}

/* A duration in the largest unit that divides it: "7d", "90m". */
static void format_duration(char *out, size_t size, int64_t ms)
{
        static const struct {
                char unit;
                int64_t ms;
        } units[] = {
                {'d', 86400000}, {'h', 3600000}, {'m', 60000}, {'s', 1000}};
        size_t i;

        for (i = 0; i < 3 && ms % units[i].ms; i++)
                ;
        snprintf(out, size, "%lld%c", (long long)(ms / units[i].ms),
                 units[i].unit);
}

/* The default of o's field in out ("" when it has none: a number out of
 * its range, a duration of 0, a NULL string). */
static void default_of(char *out, size_t size, const opt *o)
{
        const of_cli_spec *s = o->spec;
        const char *field, *str;
        int64_t v;

        out[0] = '\0';
        if (!o->defaults)
                return;
        field = o->defaults + s->offset;
        switch (s->kind) {
        case OF_CLI_INT:
                v = load_int(field, s->size);
                if (v >= s->min && v <= s->max)
                        snprintf(out, size, "%lld", (long long)v);
                break;
        case OF_CLI_DURATION:
                if ((v = load_int(field, s->size)) > 0)
                        format_duration(out, size, v);
                break;
        case OF_CLI_STRING:
                memcpy(&str, field, sizeof(str));
                if (str && *str)
                        snprintf(out, size, "%s", str);
                break;
        default:
                break;
        }
}

/* What the table knows beyond the help line, after it on f as
 * " (a; b)": required, the range, the default, repeatable; each part
 * kept on one line. */
static void put_extras(FILE *f, size_t *at, size_t col, const opt *o)
{
        const of_cli_spec *s = o->spec;
        char part[4][120], dflt[100], item[sizeof(part) + 4];
        size_t n = 0, i;

        if (s->flags & OF_CLI_REQUIRED)
                snprintf(part[n++], sizeof(part[0]), "required");
        if (s->kind == OF_CLI_INT)
                snprintf(part[n++], sizeof(part[0]), "%lld to %lld",
                         (long long)s->min, (long long)s->max);
        if (s->kind == OF_CLI_STRING && s->max > 0)
                snprintf(part[n++], sizeof(part[0]), "%lld to %lld bytes",
                         (long long)s->min, (long long)s->max);
        if (s->kind == OF_CLI_DURATION) {
                format_duration(dflt, sizeof(dflt),
                                OF_CLI_DURATION_MAX_S * 1000);
                snprintf(part[n++], sizeof(part[0]), "1s to %s", dflt);
        }
        default_of(dflt, sizeof(dflt), o);
        if (dflt[0])
                snprintf(part[n++], sizeof(part[0]), "default %s", dflt);
        if (s->flags & OF_CLI_REPEAT)
                snprintf(part[n++], sizeof(part[0]), "repeatable");
        for (i = 0; i < n; i++) {
                snprintf(item, sizeof(item), "%s%s%s", i ? "" : "(", part[i],
                         i + 1 == n ? ")" : ";");
                put_item(f, at, col, item, strlen(item));
        }
}

/* "  -b, --brokers LIST", "      --db PATH", "  -X key=value". */
static size_t label(char *out, size_t size, const of_cli_spec *s)
{
        const char *v = takes_value(s) ? s->value_name : NULL;

        if (s->alias && s->name)
                return (size_t)snprintf(out, size, "  -%c, --%s%s%s", s->alias,
                                        s->name, v ? " " : "", v ? v : "");
        if (s->alias)
                return (size_t)snprintf(out, size, "  -%c%s%s", s->alias,
                                        v ? " " : "", v ? v : "");
        return (size_t)snprintf(out, size, "      --%s%s%s", s->name,
                                v ? " " : "", v ? v : "");
}

static void options_print(FILE *f, const table *t)
{
        char lab[120];
        size_t i, col = 0, len, at;

        for (i = 0; i < t->n; i++) {
                if (t->opts[i].spec->kind == OF_CLI_OPERAND)
                        continue;
                len = label(lab, sizeof(lab), t->opts[i].spec);
                if (len <= LABEL_MAX && len + 2 > col)
                        col = len + 2;
        }
        for (i = 0; i < t->n; i++) {
                if (t->opts[i].spec->kind == OF_CLI_OPERAND)
                        continue;
                len = label(lab, sizeof(lab), t->opts[i].spec);
                fputs(lab, f);
                if (len + 2 > col)
                        fprintf(f, "\n%*s", (int)col, "");
                else
                        fprintf(f, "%*s", (int)(col - len), "");
                at = col;
                put_words(f, &at, col, t->opts[i].spec->help);
                put_extras(f, &at, col, &t->opts[i]);
                putc('\n', f);
        }
}

void of_cli_help_print(FILE *f, const of_cli_cmd *cmd)
{
        table t;

        table_init(&t, cmd, NULL);
        usage_print(f, cmd, &t);
        if (cmd->about)
                fprintf(f, "\n%s\n", cmd->about);
        fprintf(f, "\noptions:\n");
        options_print(f, &t);
        if (cmd->notes)
                fprintf(f, "\n%s\n", cmd->notes);
}

int of_cli_help(const of_cli_cmd *cmd)
{
        of_cli_help_print(stdout, cmd);
        return of_cli_close_stdout(cmd->name);
}
