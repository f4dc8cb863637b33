"""Parses a Markdown file with markdown-it-py (CommonMark); prints its
headings, top-level list items and table rows as JSON."""
import json
import sys

from markdown_it import MarkdownIt

with open(sys.argv[1], encoding="utf-8") as f:
    tokens = MarkdownIt("commonmark").enable("table").parse(f.read())

def text(inline):
    """The text a reader sees: markup gone, escapes resolved."""
    return "".join(t.content for t in inline.children if t.type in ("text", "code_inline"))


headings, items, rows = [], [], []
depth = 0
for i, token in enumerate(tokens):
    if token.type == "heading_open":
        headings.append([token.tag, text(tokens[i + 1])])
    elif token.type == "bullet_list_open":
        depth += 1
    elif token.type == "bullet_list_close":
        depth -= 1
    elif token.type == "list_item_open" and depth == 1:
        # The item's first paragraph: the date and the title.
        items.append(text(tokens[i + 2]))
    elif token.type == "tr_open":
        cells = []
        j = i + 1
        while tokens[j].type != "tr_close":
            if tokens[j].type == "inline":
                cells.append(text(tokens[j]))
            j += 1
        rows.append(cells)
print(json.dumps({"headings": headings, "items": items, "rows": rows}))
