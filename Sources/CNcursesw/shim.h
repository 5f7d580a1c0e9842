// Why this shim exists: SwiftPM drops pkg-config's -D flags, so the wide-char API must be
// switched on here; function-like macros and globals (stdscr, LINES, COLS) do not import,
// so they are wrapped in static inline functions.
#ifndef YANYI_CNCURSESW_SHIM_H
#define YANYI_CNCURSESW_SHIM_H
#define NCURSES_WIDECHAR 1
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#include <locale.h>
#include <wchar.h>
#include <ncursesw/curses.h>

static inline WINDOW *yy_stdscr(void) { return stdscr; }
static inline int yy_lines(void) { return LINES; }
static inline int yy_cols(void) { return COLS; }
static inline attr_t yy_a_bold(void) { return A_BOLD; }
static inline attr_t yy_a_reverse(void) { return A_REVERSE; }
static inline attr_t yy_a_underline(void) { return A_UNDERLINE; }
static inline attr_t yy_color_pair(short n) { return (attr_t)COLOR_PAIR(n); }
static inline int yy_key_f(int n) { return KEY_F(n); }
// Globals set by start_color(); read through functions so Swift 6 accepts them.
static inline int yy_colors(void) { return COLORS; }
static inline int yy_color_pairs(void) { return COLOR_PAIRS; }
// The C library's width of a character (what ncurses assumes when it places the next one);
// declared here because <wchar.h> hides it without _XOPEN_SOURCE.
int wcwidth(wchar_t c);
static inline int yy_wcwidth(wchar_t c) { return wcwidth(c); }
#endif
