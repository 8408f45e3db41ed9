#!/usr/bin/env python3
"""A terminal screen with its colours (tmux capture-pane -e -p) as an SVG image.

Usage: ansi_to_svg.py TITLE < screen.ansi > screen.svg
       ansi_to_svg.py TITLE frame1.ansi frame2.ansi … > recording.svg   (animated, 1.5 s a frame)

Reads SGR sequences (bold, underline, reverse, the 16 colours, 256-colour and true-colour
foregrounds and backgrounds) and draws each run of equally styled cells as a background rect
and a text span, on a fixed grid, so box drawing lines up as in the terminal. Standard library
only: a browser, a package index or GitHub shows the result as is.
"""
import html
import re
import sys

CELL_W, CELL_H, PAD = 8.4, 17, 12
FONT = "DejaVu Sans Mono, Menlo, Consolas, DejaVu Sans, monospace"
FG, BG = "#d0d0d0", "#1c1c1c"
# xterm's 16 colours.
BASIC = ["#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
         "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff"]
SGR = re.compile(r"\x1b\[([0-9;:]*)m")
# Every other escape (a CSI that is not SGR's `m`, an OSC, a charset switch) draws nothing.
OTHER_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-ln-z]|\][^\x07]*\x07|[()][A-Z0-9])")


def colour_256(n):
    if n < 16:
        return BASIC[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    level = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (level, level, level)


def apply_sgr(params, style):
    codes = [int(p) if p else 0 for p in params.replace(":", ";").split(";")] if params else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            style.clear()
        elif c == 1:
            style["bold"] = True
        elif c == 22:
            style.pop("bold", None)
        elif c == 4:
            style["underline"] = True
        elif c == 24:
            style.pop("underline", None)
        elif c == 7:
            style["reverse"] = True
        elif c == 27:
            style.pop("reverse", None)
        elif 30 <= c <= 37 or 90 <= c <= 97:
            style["fg"] = BASIC[c - 30 if c < 90 else c - 90 + 8]
        elif 40 <= c <= 47 or 100 <= c <= 107:
            style["bg"] = BASIC[c - 40 if c < 100 else c - 100 + 8]
        elif c in (38, 48) and i + 1 < len(codes):
            key = "fg" if c == 38 else "bg"
            if codes[i + 1] == 5 and i + 2 < len(codes):
                style[key] = colour_256(codes[i + 2])
                i += 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                style[key] = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5])
                i += 4
        elif c == 39:
            style.pop("fg", None)
        elif c == 49:
            style.pop("bg", None)
        i += 1


def runs(line):
    """(text, style) runs of one screen line."""
    line = OTHER_ESCAPE.sub("", line)
    style, out, pos = {}, [], 0
    for m in SGR.finditer(line):
        if m.start() > pos:
            out.append((line[pos:m.start()], dict(style)))
        apply_sgr(m.group(1), style)
        pos = m.end()
    if pos < len(line):
        out.append((line[pos:], dict(style)))
    return out


def size(lines):
    cols = max((sum(len(t) for t, _ in runs(l)) for l in lines), default=80)
    return cols * CELL_W + 2 * PAD, len(lines) * CELL_H + 2 * PAD


def body(lines):
    """The cells of one screen: background rects and text, each character at its cell's x."""
    out = []
    for row, line in enumerate(lines):
        x_cell, y = 0, PAD + row * CELL_H
        for text, style in runs(line):
            fg, bg = style.get("fg", FG), style.get("bg")
            if style.get("reverse"):
                fg, bg = bg or BG, fg
            x = PAD + x_cell * CELL_W
            if bg:
                out.append(f'<rect x="{x:.1f}" y="{y}" width="{len(text) * CELL_W:.1f}" height="{CELL_H}" fill="{bg}"/>')
            if text.strip():
                # Every character at its own cell's x: a glyph narrower or wider than the font's
                # cell (box drawing, braille, arrows from a fallback font) cannot shift the rest.
                xs = " ".join(f"{x + i * CELL_W:.1f}".rstrip("0").rstrip(".") for i in range(len(text)))
                attrs = f'x="{xs}" y="{y + CELL_H - 4}" fill="{fg}"'
                if style.get("bold"):
                    attrs += ' font-weight="bold"'
                if style.get("underline"):
                    attrs += ' text-decoration="underline"'
                out.append(f"<text {attrs}>{html.escape(text)}</text>")
            x_cell += len(text)
    return out


def svg(width, height, title, content, style=""):
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{html.escape(title)}">',
        f"<title>{html.escape(title)}</title>",
    ]
    if style:
        head.append(f"<style>{style}</style>")
    head.append(f'<rect width="100%" height="100%" rx="6" fill="{BG}"/>')
    head.append(f'<g font-family="{FONT}" font-size="14px" xml:space="preserve">')
    return "\n".join(head + content + ["</g></svg>"]) + "\n"


def render(screen, title):
    lines = screen.rstrip("\n").split("\n")
    width, height = size(lines)
    return svg(width, height, title, body(lines))


def animate(screens, title, seconds):
    """Screens shown one after another, `seconds` each, looping (CSS animation: no script)."""
    frames = [s.rstrip("\n").split("\n") for s in screens]
    width = max(size(f)[0] for f in frames)
    height = max(size(f)[1] for f in frames)
    total = seconds * len(frames)
    # Each frame is visible for its share of the loop, starting at its own delay.
    style = (
        f".frame{{visibility:hidden;animation:show {total:g}s step-end infinite}}"
        f"@keyframes show{{0%{{visibility:visible}}{100 / len(frames):.4f}%{{visibility:hidden}}}}"
    )
    content = []
    for i, lines in enumerate(frames):
        content.append(f'<g class="frame" style="animation-delay:{i * seconds:g}s">')
        content.append(f'<rect width="100%" height="100%" fill="{BG}"/>')
        content.extend(body(lines))
        content.append("</g>")
    return svg(width, height, title, content, style)


if __name__ == "__main__":
    title = sys.argv[1] if len(sys.argv) > 1 else "kpulse"
    if len(sys.argv) > 2:
        # ansi_to_svg.py TITLE FRAME.ansi… : an animated recording, 1.5 s a frame.
        screens = [open(path, encoding="utf-8", errors="replace").read() for path in sys.argv[2:]]
        sys.stdout.write(animate(screens, title, 1.5))
    else:
        sys.stdout.write(render(sys.stdin.read(), title))
