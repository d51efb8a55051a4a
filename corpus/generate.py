"""Generate the labelled corpus (corpus/labelled.jsonl) that `modwatch eval` measures rules on.

    python corpus/generate.py [--seed 20240215] [--out corpus/labelled.jsonl]

Each line is one account as Mastodon's API renders it (Account entity, Status entities with the
HTML Mastodon produces: `h-card` mentions, hashtag links, links with `invisible`/`ellipsis` spans)
and its label:

    {"id", "label": "spam"|"benign", "family" (spam) | "kind" (benign), "lang", "split": "train"|"holdout",
     "observed_at", "account": {...}, "statuses": [...]}

What the generator draws from is written from how the spam families behaved in the wild (the
February 2024 wave of fresh accounts with an image, an invite link and two random mentions; "hi"
mention spam; follower sellers; fake support numbers; dating, pharma and Indonesian gambling spam;
crypto scams in several languages), not from the rules: texts are assembled from varied phrasings,
emoji, spelling and layouts, spam accounts are sometimes aged or have a real avatar and followers,
and the benign side has the hard cases (scam warnings quoting scam vocabulary, crypto developers,
donation addresses, artists behind shorteners, news bots, journalists writing about spam, café
phone numbers, newcomers introducing themselves with mentions). The split is by account and
stable: `holdout` accounts were never looked at while the default rules were tuned.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
OBSERVED_AT = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
HOSTS = ("mastodon.social", "mstdn.jp", "chaos.social", "mastodon.online", "piaille.fr", "mas.to", "social.vivaldi.net",
         "mastodon.world", "fosstodon.org", "det.social", "mstdn.social", "hachyderm.io", "norden.social",
         "mastodon.uno", "masto.es", "mastodon.com.br", "sakurajima.moe", "tkz.one", "mastodon.nl")
OPEN_SERVERS = ("mastodon.social", "mastodon.world", "mstdn.jp", "mas.to", "mastodon.online", "mstdn.social",
                "social.vivaldi.net")
HOME = "example.social"  # the instance the corpus is observed from
BLURHASH_CHARS = string.ascii_letters + string.digits + "#$%*+,-.:;=?@[]^_{|}~"


class Ids:
    def __init__(self) -> None:
        self.next = 111_000_000_000_000_000

    def __call__(self) -> str:
        self.next += random.randint(1_000, 90_000_000)
        return str(self.next)


new_id = Ids()


# -- Mastodon's HTML --


def link(url: str) -> str:
    """A link as Mastodon renders it: scheme invisible, the first 30 characters shown, the rest invisible."""
    scheme, _, rest = url.partition("://")
    shown, hidden = rest[:30], rest[30:]
    ellipsis = "ellipsis" if hidden else ""
    return (f'<a href="{url}" target="_blank" rel="nofollow noopener noreferrer" translate="no">'
            f'<span class="invisible">{scheme}://</span><span class="{ellipsis}">{shown}</span>'
            f'<span class="invisible">{hidden}</span></a>')


def mention(user: dict) -> str:
    return (f'<span class="h-card" translate="no"><a href="{user["url"]}" class="u-url mention">'
            f'@<span>{user["username"]}</span></a></span>')


def hashtag(tag: str, host: str = HOME) -> str:
    return f'<a href="https://{host}/tags/{tag.lower()}" class="mention hashtag" rel="tag">#<span>{tag}</span></a>'


def paragraphs(*parts: str) -> str:
    return "".join(f"<p>{part}</p>" for part in parts if part)


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# -- people, names, times --


FIRST = {
    "en": ["emma", "liam", "olivia", "noah", "ava", "jack", "mia", "leo", "grace", "owen", "ruby", "finn"],
    "de": ["lena", "jonas", "mia", "felix", "hannah", "lukas", "sophie", "paul", "marie", "tim", "anja", "kai"],
    "es": ["lucia", "mateo", "sofia", "hugo", "martina", "pablo", "valeria", "diego", "carmen", "javi"],
    "fr": ["camille", "louis", "chloe", "lucas", "lea", "hugo", "manon", "jules", "ines", "theo"],
    "ja": ["yuki", "haruto", "sakura", "ren", "aoi", "sora", "hina", "kaito", "mio", "riku"],
    "id": ["putri", "budi", "sari", "agus", "dewi", "rizky", "ayu", "dimas", "intan", "bayu"],
    "ru": ["anna", "ivan", "olga", "dmitry", "elena", "sergei", "natasha", "alexei", "irina", "pavel"],
    "zh": ["wei", "fang", "lei", "jing", "yang", "min", "hao", "xin", "tao", "ling"],
    "pt": ["ana", "joao", "beatriz", "pedro", "mariana", "lucas", "julia", "rafael"],
    "it": ["giulia", "marco", "chiara", "luca", "sara", "matteo", "elena", "davide"],
    "nl": ["sanne", "daan", "lotte", "bram", "eva", "thijs", "fleur", "joris"],
}
LANGS = list(FIRST)


def human_username(lang: str) -> str:
    name = random.choice(FIRST[lang])
    style = random.random()
    if style < 0.3:
        return name
    if style < 0.55:
        return f"{name}{random.choice(['', '_'])}{random.choice(['dev', 'art', 'writes', 'photo', 'cooks', 'bikes', 'reads'])}"
    if style < 0.8:
        return f"{name}{random.randint(1, 99)}"
    return f"{name}_{random.choice(string.ascii_lowercase)}{random.choice(['ller', 'berg', 'son', 'ez', 'ova', 'ini'])}"


def random_username() -> str:
    """What throwaway sign-ups look like: keyboard noise, names with long numbers, or plausible names."""
    style = random.random()
    if style < 0.35:
        return "".join(random.choices(string.ascii_lowercase + string.digits, k=random.randint(7, 12)))
    if style < 0.65:
        return f"{random.choice(FIRST[random.choice(LANGS)])}{random.randint(1000, 999999)}"
    if style < 0.8:
        return "".join(random.choices(string.ascii_lowercase, k=random.randint(5, 9))) + random.choice(["", "_", "x"])
    return human_username(random.choice(LANGS))  # some spam accounts look entirely ordinary


def ago(**delta: float) -> datetime:
    return OBSERVED_AT - timedelta(**delta)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def blurhash() -> str:
    return "".join(random.choices(BLURHASH_CHARS, k=random.randint(28, 36)))


def user(host: str | None = None) -> dict:
    host = host or random.choice(HOSTS)
    username = human_username(random.choice(LANGS))
    return {"id": new_id(), "username": username, "acct": f"{username}@{host}", "url": f"https://{host}/@{username}"}


def account(username: str, *, created: datetime, display_name: str = "", note: str = "", followers: int = 0,
            following: int = 0, statuses: int = 0, default_avatar: bool = False, bot: bool = False,
            fields: list[tuple[str, str]] | None = None, host: str | None = None, locked: bool = False) -> dict:
    account_id = new_id()
    acct = username if host is None else f"{username}@{host}"
    base = f"https://{host or HOME}"
    avatar = (f"{base}/avatars/original/missing.png" if default_avatar else
              f"{base}/system/accounts/avatars/{account_id[:3]}/{account_id[3:6]}/original/{random.getrandbits(64):016x}.jpg")
    return {
        "id": account_id, "username": username, "acct": acct, "display_name": display_name, "locked": locked, "bot": bot,
        "discoverable": random.choice([True, True, None]), "group": False, "created_at": iso(created.replace(hour=0, minute=0, second=0, microsecond=0)
                                                                              if host else created),
        "note": note, "url": f"{base}/@{username}", "avatar": avatar, "followers_count": followers, "following_count": following,
        "statuses_count": statuses, "last_status_at": None,
        "fields": [{"name": name, "value": value, "verified_at": None} for name, value in fields or []],
    }


def status(owner: dict, content: str, *, at: datetime, lang: str, mentions: list[dict] = (), tags: list[str] = (),
           media: list[dict] = (), visibility: str = "public", card_url: str | None = None, spoiler: str = "",
           reply_to: dict | None = None) -> dict:
    status_id = new_id()
    base = owner["url"].rsplit("/@", 1)[0]
    return {
        "id": status_id, "created_at": iso(at), "in_reply_to_id": new_id() if reply_to else None,
        "in_reply_to_account_id": reply_to["id"] if reply_to else None, "sensitive": bool(spoiler),
        "spoiler_text": spoiler, "visibility": visibility, "language": lang,
        "url": f"{base}/@{owner['username']}/{status_id}", "edited_at": None, "content": content,
        "media_attachments": list(media), "mentions": [{k: m[k] for k in ("id", "username", "acct", "url")} for m in mentions],
        "tags": [{"name": tag.lower(), "url": f"https://{HOME}/tags/{tag.lower()}"} for tag in tags],
        "card": {"url": card_url, "title": "", "description": "", "type": "link"} if card_url else None,
    }


def image(described: bool | str) -> dict:
    description = described if isinstance(described, str) else (
        random.choice(["A photo of", "Screenshot of", "Drawing of", "Picture showing"]) + " " +
        random.choice(["a cat asleep on a keyboard", "the harbour at dusk", "my latest sketch", "a bowl of ramen",
                       "the conference stage", "a chart of the results", "autumn leaves on a bench"])) if described else None
    media_id = new_id()
    return {"id": media_id, "type": "image", "url": f"https://files.{HOME}/media/{random.getrandbits(48):012x}.png",
            "description": description, "blurhash": blurhash()}


def spread(count: int, start: datetime, end: datetime) -> list[datetime]:
    span = max((end - start).total_seconds(), 60)
    return sorted(start + timedelta(seconds=random.uniform(0, span)) for _ in range(count))


def finish(record: dict, posts: list[dict]) -> dict:
    acc = record["account"]
    created = datetime.fromisoformat(acc["created_at"].replace("Z", "+00:00"))
    for post in posts:  # nobody posts before signing up
        if post["created_at"] < acc["created_at"]:
            post["created_at"] = iso(created + (OBSERVED_AT - created) * random.uniform(0.1, 0.95))
    acc["statuses_count"] = max(acc["statuses_count"], len(posts))
    if posts:
        acc["last_status_at"] = max(p["created_at"] for p in posts)[:10]
    if record["label"] == "benign" and record["kind"] != "news_bot":
        unrepeated(posts, record["lang"])
    record["statuses"] = sorted(posts, key=lambda p: p["created_at"], reverse=True)
    return record


TAILS = {
    "en": ["Anyway, have a nice day.", "More soon!", "What do you think?", "(third coffee already)", "Long week.", "🙂", "Thoughts?"],
    "de": ["Schönen Abend euch!", "Mehr bald.", "Was meint ihr?", "Lange Woche.", "🙂"],
    "es": ["¡Buen día!", "Más pronto.", "¿Qué opináis?", "Semana larga.", "🙂"],
    "fr": ["Bonne soirée !", "La suite bientôt.", "Vous en pensez quoi ?", "Longue semaine.", "🙂"],
    "ja": ["よろしくね。", "また今度。", "どう思う？", "疲れた〜", "🙂"],
    "id": ["Selamat malam!", "Nanti lanjut.", "Gimana menurut kalian?", "Minggu yang panjang.", "🙂"],
    "ru": ["Хорошего вечера!", "Продолжение следует.", "Что думаете?", "Длинная неделя.", "🙂"],
    "zh": ["晚安！", "下次再说。", "你们觉得呢？", "好累。", "🙂"],
    "pt": ["Bom dia!", "Mais em breve.", "O que acham?", "🙂"],
    "it": ["Buona serata!", "A presto.", "Che ne pensate?", "🙂"],
    "nl": ["Fijne avond!", "Binnenkort meer.", "Wat vinden jullie?", "🙂"],
}


def unrepeated(posts: list[dict], lang: str) -> None:
    """People rarely post the very same words twice: a repeat gets a different ending."""
    seen: set[str] = set()
    for post in posts:
        while post["content"] in seen:
            post["content"] = post["content"][:-4] + " " + random.choice(TAILS.get(lang, TAILS["en"])) + "</p>"
        seen.add(post["content"])


def spam_record(family: str, lang: str, acc: dict) -> dict:
    return {"label": "spam", "family": family, "lang": lang, "account": acc}


def benign_record(kind: str, lang: str, acc: dict) -> dict:
    # `finish` sees the kind and keeps a person's posts from repeating word for word
    return {"label": "benign", "kind": kind, "lang": lang, "account": acc}


def fresh_spam_account(*, max_age_hours: float = 30, host: str | None = None, aged: float = 0.1, **extra) -> dict:
    """A throwaway account: mostly hours old, empty profile, default avatar; some bought or aged ones."""
    if random.random() < aged:
        created = ago(days=random.uniform(60, 900))
        followers, following = random.randint(3, 120), random.randint(10, 300)
    else:
        created = ago(hours=random.uniform(0.2, max_age_hours))
        followers, following = random.choice([0, 0, 0, 1, 2]), random.choice([0, 0, 1, 3, 12])
    defaults = dict(created=created, followers=followers, following=following, default_avatar=random.random() < 0.75,
                    host=host if host is not None else (random.choice(OPEN_SERVERS) if random.random() < 0.7 else None))
    username = random_username()
    defaults["display_name"] = username if random.random() < 0.5 else ""
    defaults.update(extra)
    return account(username, **defaults)


# -- spam families --


def wave_invite(wave: dict) -> dict:
    """February 2024: fresh accounts on open servers, 1-4 posts, image without alt, invite link, two random mentions."""
    acc = fresh_spam_account(max_age_hours=6, aged=0.0, display_name="")
    posts = []
    for at in spread(random.randint(1, 4), ago(hours=1.5), ago(minutes=2)):
        targets = [user() for _ in range(random.choice([2, 2, 2, 3]))]
        body = random.choice(wave["texts"])
        invite = wave["invite"]
        text = " ".join(mention(t) for t in targets) + " " + body.format(link=link(invite))
        posts.append(status(acc, paragraphs(text), at=at, lang=wave["lang"], mentions=targets,
                            media=[dict(image(False), blurhash=wave["blurhash"])],
                            visibility=random.choice(["public", "public", "unlisted"])))
    return finish(spam_record("wave_invite", wave["lang"], acc), posts)


def make_waves() -> list[dict]:
    return [
        {"lang": "ja", "invite": "https://discord.gg/ctkpaarr", "texts": [
            "荒らし共栄圏 {link} 参加しよう！", "荒らし共栄圏に参加 {link}", "みんなで荒らそう {link} 🎉",
            "Mastodon 荒らし共栄圏 {link} 今すぐ参加"]},
        {"lang": "en", "invite": "https://discord.gg/Xr7kP2mq", "texts": [
            "Join our server now {link}", "join the raid server!! {link}", "come join us {link} free nitro",
            "best community on discord {link} join"]},
        {"lang": "ja", "invite": "https://discord.com/invite/kY3nQe8w", "texts": [
            "サーバー参加してね {link}", "{link} 参加者募集中！", "楽しいサーバー {link} 来てね"]},
        {"lang": "en", "invite": "https://t.me/+Qm8sLk2aZtA5NjVk", "texts": [
            "Free signals group, join fast {link}", "Join my telegram {link} 100x gems", "{link} private group open today"]},
    ]


HI_TEXTS = ["hi", "Hi", "hello", "hey", "hii", "hi 👋", "Hello dear", "hi there", "hey!", "hola", "Hallo", "こんにちは",
            "hi, how are you?", "hello friend"]


def hi_mention() -> dict:
    acc = fresh_spam_account(max_age_hours=48, aged=0.15)
    posts = []
    for at in spread(random.randint(1, 4), ago(hours=6), ago(minutes=5)):
        targets = [user() for _ in range(random.randint(1, 3))]
        text = " ".join(mention(t) for t in targets) + " " + random.choice(HI_TEXTS)
        posts.append(status(acc, paragraphs(text), at=at, lang="en", mentions=targets,
                            media=[image(False)] if random.random() < 0.35 else [], visibility=random.choice(["public", "direct"])))
    return finish(spam_record("hi_mention", "en", acc), posts)


FOLLOWER_TEXTS = {
    "en": ["Buy real Mastodon followers, fast delivery, cheap prices! {link}",
           "Grow your account: 1000 followers for $5 ✅ likes ✅ boosts {link}",
           "Want more followers? Instant delivery, 100% real & active users {link}",
           "🔥 Get 10k followers today. Boost your reach! {link}"],
    "es": ["Compra seguidores reales para Mastodon, entrega rápida {link}", "¡Consigue 1000 seguidores por 5$! {link}"],
    "pt": ["Compre seguidores reais e ativos, entrega imediata {link}", "Ganhe seguidores rápido! {link}"],
    "de": ["Echte Follower kaufen, schnelle Lieferung, günstig {link}"],
    "id": ["Jual followers aktif murah, proses cepat {link}"],
}


def follower_selling() -> dict:
    lang = random.choice(list(FOLLOWER_TEXTS))
    domain = random.choice(["growfollowers.shop", "smm-panel.top", "buyfans.store", "likes4u.xyz", "fastsmm.club"])
    acc = fresh_spam_account(aged=0.25, note=paragraphs(random.choice(["SMM services", "Social media growth", "Best SMM panel", ""])),
                             fields=[("shop", link(f"https://{domain}/"))] if random.random() < 0.5 else None)
    posts = []
    for at in spread(random.randint(1, 4), ago(days=2), ago(minutes=10)):
        url = f"https://{domain}/{random.choice(['mastodon', 'order', 'p', 'go'])}/{random.randint(10, 9999)}"
        text = random.choice(FOLLOWER_TEXTS[lang]).format(link=link(url))
        tags = random.sample(["followers", "marketing", "growth", "socialmedia", "smm"], k=random.randint(0, 3))
        posts.append(status(acc, paragraphs(text + " " + " ".join(hashtag(t) for t in tags)), at=at, lang=lang, tags=tags))
    return finish(spam_record("follower_selling", lang, acc), posts)


BRANDS = ["Coinbase", "Binance", "MetaMask", "Delta Airlines", "Cash App", "PayPal", "Trust Wallet", "QuickBooks",
          "Norton", "Expedia", "American Airlines", "Kraken"]


def phone_number() -> str:
    area = random.choice(["888", "877", "866", "855", "844", "833", "800"])
    formats = ["+1-{a}-{b}-{c}", "1 ({a}) {b}-{c}", "+1 {a} {b} {c}", "1.{a}.{b}.{c}", "☎️ 1{a}{b}{c}", "+1 ({a})-{b}-{c}"]
    return random.choice(formats).format(a=area, b=random.randint(200, 999), c=random.randint(1000, 9999))


SUPPORT_TEXTS = [
    "{brand} customer support number {phone} call now 24/7",
    "{brand} helpline {phone} — talk to a live agent",
    "How do I contact {brand} support? Dial {phone} (toll free) for instant help",
    "{brand} wallet locked? Call {brand} support {phone}",
    "Call {phone} {brand} reservations number, change flight, refund",
    "{brand} 📞 {phone} customer service phone number USA",
]


def fake_support() -> dict:
    brand = random.choice(BRANDS)
    phone = phone_number()
    display = random.choice([f"{brand} Support", f"{brand} Help {phone}", f"{brand} Customer Care", "Help Desk", ""])
    acc = fresh_spam_account(aged=0.2, display_name=display, note=paragraphs(random.choice(["", f"Call {phone}", "Support 24/7"])))
    posts = []
    for at in spread(random.randint(1, 4), ago(days=1), ago(minutes=3)):
        text = random.choice(SUPPORT_TEXTS).format(brand=brand, phone=phone)
        if random.random() < 0.4:
            text += " " + link(f"https://{random.choice(['telegra.ph', 'sites.google.com', 'rentry.co', 'pastelink.net'])}/{brand.lower().replace(' ', '-')}-support-{random.randint(10, 999)}")
        posts.append(status(acc, paragraphs(text), at=at, lang="en"))
    return finish(spam_record("fake_support", "en", acc), posts)


DATING_TEXTS = {
    "en": ["Lonely tonight? 😘 I'm waiting for you here {link}", "Hot singles in your area want to meet 🔥 {link}",
           "hey babe, my private photos are here 💋 {link}", "Looking for a serious man 💕 write me {link}",
           "18+ 🔞 meet girls near you tonight {link}"],
    "de": ["Einsam? Heiße Singles in deiner Nähe 💋 {link}", "Ich suche einen Mann für ein Date heute Abend 😘 {link}"],
    "fr": ["Célibataire ? Rencontre des femmes près de chez toi 💕 {link}", "Je t'attends ici mon chéri 😘 {link}"],
    "ru": ["Знакомства для взрослых 18+ 💋 {link}", "Скучаю одна, пиши мне 😘 {link}"],
    "es": ["¿Solo esta noche? Chicas cerca de ti 💋 {link}"],
}


def dating() -> dict:
    lang = random.choice(list(DATING_TEXTS))
    domain = random.choice(["datehot.club", "love-meet.online", "sweetgirls.live", "flirtzone.site", "bit.ly", "tinyurl.com", "cutt.ly"])
    acc = fresh_spam_account(aged=0.15, default_avatar=random.random() < 0.3,
                             display_name=random.choice(["Anna 💋", "Jessica", "Kate 🌹", "Sweet Mila", "Lina", ""]),
                             note=paragraphs(random.choice(["", "Looking for love 💕", "Single, 24", "🔞"])))
    posts = []
    for at in spread(random.randint(1, 4), ago(days=1), ago(minutes=2)):
        url = f"https://{domain}/{''.join(random.choices(string.ascii_letters + string.digits, k=6))}"
        targets = [user() for _ in range(random.choice([0, 0, 1, 2]))]
        text = " ".join(mention(t) for t in targets) + " " + random.choice(DATING_TEXTS[lang]).format(link=link(url))
        posts.append(status(acc, paragraphs(text.strip()), at=at, lang=lang, mentions=targets,
                            media=[image(False)] if random.random() < 0.5 else []))
    return finish(spam_record("dating", lang, acc), posts)


DRUGS = ["viagra", "cialis", "tramadol", "xanax", "oxycodone", "adderall", "valium", "levitra", "phentermine"]
PHARMA_TEXTS = [
    "Buy {drug} online without prescription, discreet shipping {link}",
    "cheap {drug} 100mg — order now, no Rx needed {link}",
    "{drug} for sale, overnight delivery, best price {link}",
    "Where to buy {drug} online safely? {link} 💊",
    "Order {drug} and {drug2} online, 50% off today {link}",
]


def pharma() -> dict:
    domain = random.choice(["rx-pharm24.com", "meds-online.shop", "pillstore.top", "bestpharmacy.pw", "sites.google.com"])
    acc = fresh_spam_account(aged=0.2)
    posts = []
    for at in spread(random.randint(1, 4), ago(days=2), ago(minutes=2)):
        drug, drug2 = random.sample(DRUGS, 2)
        url = f"https://{domain}/{drug}-{random.randint(10, 999)}"
        text = random.choice(PHARMA_TEXTS).format(drug=random.choice([drug, drug.title(), drug.upper()]), drug2=drug2, link=link(url))
        posts.append(status(acc, paragraphs(text), at=at, lang="en"))
    return finish(spam_record("pharma", "en", acc), posts)


GAMBLING_TEXTS = [
    "Situs slot gacor hari ini gampang maxwin 🔥 daftar sekarang {link}",
    "Link alternatif {brand} terbaru, deposit pulsa tanpa potongan {link}",
    "Bandar togel online terpercaya, bonus new member 100% {link}",
    "{brand} slot88 gacor, RTP live tertinggi hari ini {link}",
    "Daftar {brand} situs judi online resmi, pasti JP {link} #slotgacor",
    "bocoran pola slot gacor malam ini, auto maxwin {link}",
]


def gambling_id() -> dict:
    brand = random.choice(["SLOT88", "Gacor77", "TOTO4D", "MAXWIN99", "JudiBet", "Zeus138", "Olympus1000"])
    domain = random.choice(["gacor-hari-ini.xyz", "slot88resmi.org", "toto4d.vip", "linkalternatif.site", "heylink.me", "linktr.ee"])
    acc = fresh_spam_account(aged=0.3, display_name=random.choice([brand, f"{brand} Official", "Link Alternatif", ""]),
                             note=paragraphs(random.choice(["", f"{brand} situs resmi", "Slot online terpercaya"])))
    posts = []
    for at in spread(random.randint(1, 4), ago(days=2), ago(minutes=4)):
        url = f"https://{domain}/{brand.lower()}"
        text = random.choice(GAMBLING_TEXTS).format(brand=brand, link=link(url))
        posts.append(status(acc, paragraphs(text), at=at, lang="id", media=[image(False)] if random.random() < 0.4 else []))
    return finish(spam_record("gambling_id", "id", acc), posts)


CRYPTO_TEXTS = {
    "en": ["🚀 Massive {coin} giveaway! Send 0.1 and get 0.2 back, only today {link}",
           "I made $4,800 this week trading {coin} with this platform, guaranteed profit {link}",
           "Claim your free {coin} airdrop now before it ends {link}",
           "Lost access to your wallet? Our recovery expert restores funds, DM on telegram {tg}",
           "Join my {coin} signals group, 10x returns every week {tg}"],
    "ru": ["Пассивный доход от 500$ в день на {coin}! Пиши в телеграм {tg}",
           "Раздача {coin}: отправь 0.1 и получи 0.2 обратно {link}", "Заработок на криптовалюте без вложений, гарантия прибыли {link}",
           "Инвестиции в {coin} с доходностью 300% в месяц {tg}"],
    "de": ["Verdopple deine {coin} in 24 Stunden, garantierter Gewinn! {link}",
           "Ich verdiene 3.000 € pro Woche mit Krypto-Trading, schreib mir auf Telegram {tg}",
           "Kostenloser {coin} Airdrop, jetzt sichern {link}"],
    "es": ["Gana 500$ al día con {coin}, inversión garantizada {link}", "¡Sorteo de {coin}! Envía 0.1 y recibe 0.2 {link}",
           "Invierte en criptomonedas con ganancias garantizadas, escríbeme por telegram {tg}"],
    "zh": ["加密货币投资，稳赚不赔，日收益10%，联系我 {tg}", "{coin}空投免费领取，名额有限 {link}", "带你炒币，月入十万，私信电报 {tg}"],
}


def crypto() -> dict:
    lang = random.choice(list(CRYPTO_TEXTS))
    coin = random.choice(["BTC", "Bitcoin", "ETH", "USDT", "SOL", "TON"])
    domain = random.choice(["btc-double.net", "eth2x-event.com", "claim-airdrop.app", "cryptoprofit.pro", "binance-gift.org"])
    handle = random.choice(["@crypto_mentor_", "@invest_anna", "@btcprofit", "@trader_max"]) + str(random.randint(1, 99))
    acc = fresh_spam_account(aged=0.25, display_name=random.choice(["Crypto Mentor", "Elon 🚀", "Invest with Anna", "", "Trader"]),
                             note=paragraphs(random.choice(["", "Crypto investor 📈", "Financial freedom 💰", f"Telegram: {handle}"])))
    posts = []
    for at in spread(random.randint(1, 4), ago(days=3), ago(minutes=1)):
        url = f"https://{domain}/{random.choice(['claim', 'event', 'join'])}?ref={random.randint(100, 9999)}"
        tg = random.choice([handle, link(f"https://t.me/{handle.lstrip('@')}")])
        text = random.choice(CRYPTO_TEXTS[lang]).format(coin=coin, link=link(url), tg=tg)
        posts.append(status(acc, paragraphs(text), at=at, lang=lang))
    return finish(spam_record(f"crypto_{lang}", lang, acc), posts)


SEO_TOPICS = ["best-vpn-deals", "cheap-essay-writing", "replica-watches", "casino-bonus-codes", "seo-backlinks-service"]


def link_farm() -> dict:
    domain = random.choice(["topdeals-review.com", "bestbuy-guide.net", "essaypro-help.org", "backlinks4u.biz"])
    acc = fresh_spam_account(aged=0.4, note=paragraphs(link(f"https://{domain}/")))
    posts = []
    for at in spread(random.randint(3, 9), ago(days=4), ago(minutes=10)):
        topic = random.choice(SEO_TOPICS)
        text = random.choice(["Check this: {link}", "{title} — read more {link}", "New post: {title} {link}", "{link}"]).format(
            title=topic.replace("-", " ").title(), link=link(f"https://{domain}/{topic}-{random.randint(2020, 2026)}"))
        posts.append(status(acc, paragraphs(text), at=at, lang="en"))
    return finish(spam_record("link_farm", "en", acc), posts)


# -- benign kinds --


ORDINARY = {
    "en": ["Morning walk by the river, the herons are back.", "Finally fixed that flaky test. It was a timezone, of course.",
           "Does anyone have a good recipe for lentil soup?", "Reading a book about the history of maps. Recommended.",
           "Our community garden needs volunteers this weekend.", "The train was late again, but the view made up for it."],
    "de": ["Heute endlich den Balkon bepflanzt. Tomaten, Basilikum, Hoffnung.", "Weiß jemand, warum die S-Bahn schon wieder ausfällt?",
           "Neues Lieblingscafé gefunden, der Kuchen ist ein Traum.", "Wochenende im Harz, Wandern bei Nebel."],
    "es": ["Hoy toca paella con la familia.", "Alguien sabe de un buen taller de bicis en Valencia?", "Leyendo a Cortázar otra vez."],
    "fr": ["Petit marché ce matin, les fraises sont arrivées.", "Quelqu'un a un bon livre de SF à conseiller ?", "Le vélo sous la pluie, c'est une ambiance."],
    "ja": ["今日は雨なので家で本を読んでいます。", "新しいカメラで桜を撮りました。", "ラーメン屋の行列がすごかった。"],
    "id": ["Pagi ini hujan deras di Bandung.", "Ada rekomendasi buku sejarah Indonesia?", "Baru selesai masak rendang, capek tapi puas."],
    "ru": ["Первый снег в Петербурге, красота.", "Кто-нибудь читал новую книгу Пелевина?", "Сегодня пекла пироги с капустой."],
    "zh": ["今天去爬山了，风景很好。", "有人推荐好看的科幻小说吗？", "周末在家做了饺子。"],
    "pt": ["Café da manhã com pão de queijo, nada melhor.", "Alguém recomenda um bom livro de ficção?"],
    "it": ["Oggi pasta al pesto fatta in casa.", "Qualcuno conosce un buon meccanico a Bologna?"],
    "nl": ["Eindelijk weer fietsen zonder regen.", "Weet iemand een goede boekhandel in Utrecht?"],
}


def ordinary_account(lang: str, *, kind: str = "ordinary", **extra) -> tuple[dict, list[dict]]:
    created = extra.pop("created", ago(days=random.uniform(20, 2000)))
    username = human_username(lang)
    acc = account(username, created=created, display_name=username.replace("_", " ").title(),
                  note=paragraphs(random.choice(["", "Just a person on the internet.", "she/her", "Dad, cyclist, tea drinker",
                                                 "Developer. Opinions my own.", "📷 🌿 📚"])),
                  followers=random.randint(5, 2000), following=random.randint(20, 800), statuses=random.randint(20, 5000),
                  default_avatar=random.random() < 0.1, host=random.choice([None, *HOSTS]), **extra)
    return acc, []


def ordinary(lang: str) -> dict:
    acc, posts = ordinary_account(lang)
    for at in spread(random.randint(2, 8), ago(days=14), ago(minutes=30)):
        text = random.choice(ORDINARY[lang])
        media = [image(random.random() < 0.7)] if random.random() < 0.3 else []
        if random.random() < 0.3:
            friend = user()
            posts.append(status(acc, paragraphs(f"{mention(friend)} {text}"), at=at, lang=lang, mentions=[friend], reply_to=friend, media=media))
        else:
            posts.append(status(acc, paragraphs(text), at=at, lang=lang, media=media))
    return finish(benign_record("ordinary", lang, acc), posts)


WARNINGS = {
    "en": ["PSA: there's a fake {coin} airdrop going around. Never share your seed phrase, nobody legit will ask for it.",
           "Beware of accounts promising guaranteed returns or a crypto giveaway. It's a scam, report and block.",
           "Scam alert: 'wallet recovery experts' in your replies are scammers. Don't DM them on Telegram.",
           "Got a DM about a Bitcoin giveaway? Block and report. Double-your-bitcoin is always a scam.",
           "Fake Coinbase support numbers are being posted again. Real support never asks you to call a number from a reply."],
    "de": ["Achtung: Falsche {coin} Airdrops im Umlauf. Niemals die Seed-Phrase weitergeben!",
           "Warnung vor Konten, die garantierte Gewinne mit Krypto versprechen. Das ist Betrug, bitte melden."],
    "es": ["Cuidado con los sorteos de {coin} falsos. Nunca compartas tu frase semilla.",
           "Aviso: las cuentas que prometen inversión garantizada son estafas. Reportad y bloquead."],
    "ru": ["Осторожно: мошенники раздают фейковые {coin} аирдропы. Никому не сообщайте сид-фразу!",
           "Внимание: «пассивный доход» в телеграме — это развод. Жалуйтесь и блокируйте."],
    "fr": ["Attention aux faux airdrops {coin} : ne partagez jamais votre phrase de récupération.",
           "Arnaque en cours : des comptes promettent des gains garantis en crypto. Signalez-les."],
    "id": ["Hati-hati penipuan slot gacor dan judi online yang menyamar jadi akun teman. Laporkan!",
           "Waspada link 'maxwin' di balasan, itu spam judi. Jangan diklik."],
}


def scam_warning(lang: str) -> dict:
    acc, posts = ordinary_account(lang)
    for at in spread(random.randint(2, 5), ago(days=10), ago(minutes=20)):
        if random.random() < 0.6:
            text = random.choice(WARNINGS[lang]).format(coin=random.choice(["ETH", "Bitcoin", "Solana", "USDT"]))
            if random.random() < 0.3:
                text += " " + hashtag(random.choice(["scam", "infosec", "psa", "security"]))
        else:
            text = random.choice(ORDINARY[lang])
        posts.append(status(acc, paragraphs(text), at=at, lang=lang))
    return finish(benign_record("scam_warning", lang, acc), posts)


DEV_TEXTS = [
    "Deployed the new ERC-20 contract to testnet: {addr} — feedback on the gas costs welcome.",
    "Our airdrop claim contract had a reentrancy bug; write-up on the fix {link}",
    "Reminder for devs: test wallet recovery flows with a throwaway seed phrase, never a real one.",
    "Benchmarked three Bitcoin libraries for PSBT signing, results {link}",
    "If your dapp asks users to paste a seed phrase, you are building a phishing kit. Don't.",
    "New release of our Rust Ethereum client, changelog {link}",
]


def crypto_dev() -> dict:
    acc, posts = ordinary_account("en", fields=[("GitHub", link(f"https://github.com/{random.choice(FIRST['en'])}-eth"))])
    acc["note"] = paragraphs(random.choice(["Smart contract auditor.", "Core dev at a small L2.", "Bitcoin dev, Rust, coffee."]))
    for at in spread(random.randint(3, 7), ago(days=20), ago(hours=1)):
        text = random.choice(DEV_TEXTS).format(addr="0x" + "".join(random.choices("0123456789abcdef", k=40)),
                                               link=link(f"https://{random.choice(['github.com', 'blog.example.dev', 'hackmd.io'])}/{random.randint(1, 999)}"))
        posts.append(status(acc, paragraphs(text), at=at, lang="en", tags=["ethereum"] if "ERC" in text else []))
    return finish(benign_record("crypto_dev", "en", acc), posts)


def btc_address() -> str:
    return random.choice(["bc1q", "1", "3"]) + "".join(random.choices("023456789acdefghjklmnpqrstuvwxyz", k=38 if random.random() < 0.5 else 30))


def donation(lang: str) -> dict:
    addr = random.choice([btc_address(), "0x" + "".join(random.choices("0123456789abcdefABCDEF", k=40))])
    fields = [("Donate", addr if random.random() < 0.6 else link("https://ko-fi.com/" + human_username(lang))),
              ("Website", link(f"https://{human_username(lang)}.{random.choice(['art', 'dev', 'net'])}"))]
    acc, posts = ordinary_account(lang, fields=fields)
    acc["note"] = paragraphs(random.choice(["Open source maintainer. Donations keep the servers running.",
                                            "Illustrator. Tips welcome: " + addr, "Running a small instance for our town."]))
    for at in spread(random.randint(2, 6), ago(days=30), ago(hours=2)):
        text = random.choice([random.choice(ORDINARY[lang]),
                              f"Server costs this month are covered, thank you! If you want to chip in: {addr}",
                              "New release is out, thanks to everyone who donated ❤️"])
        posts.append(status(acc, paragraphs(text), at=at, lang=lang))
    return finish(benign_record("donation", lang, acc), posts)


def artist_shortener(lang: str) -> dict:
    shortener = random.choice(["bit.ly", "tinyurl.com", "linktr.ee", "cutt.ly", "is.gd"])
    acc, posts = ordinary_account(lang, fields=[("Shop", link(f"https://{shortener}/{human_username(lang)}"))])
    acc["note"] = paragraphs(random.choice(["Illustrator & comic artist. Commissions open!", "Painter, prints in my shop.",
                                            "Zeichnerin. Shop unten.", "イラストレーター"]))
    for at in spread(random.randint(3, 8), ago(days=15), ago(hours=1)):
        url = f"https://{shortener}/{''.join(random.choices(string.ascii_letters + string.digits, k=7))}"
        text = random.choice(["New print in the shop! {link}", "Commissions are open again {link}", "WIP of the dragon piece",
                              "Sketchbook page from today", "Patreon post with the process video {link}"]).format(link=link(url))
        tags = random.sample(["MastoArt", "art", "illustration", "digitalart", "CreativeToots"], k=2)
        posts.append(status(acc, paragraphs(text + " " + " ".join(hashtag(t) for t in tags)), at=at, lang=lang, tags=tags,
                            media=[image(random.random() < 0.6)] if random.random() < 0.8 else []))
    return finish(benign_record("artist_shortener", lang, acc), posts)


def news_bot(lang: str) -> dict:
    site = random.choice(["tagesschau.de", "elpais.com", "lemonde.fr", "theguardian.com", "nhk.or.jp", "kompas.com", "bbc.co.uk"])
    username = site.split(".")[0] + random.choice(["", "_bot", "news"])
    acc = account(username, created=ago(days=random.uniform(200, 1500)), display_name=f"{site} (unofficial bot)", bot=True,
                  note=paragraphs(f"Headlines from {site}, posted automatically."), followers=random.randint(300, 40000),
                  following=0, statuses=random.randint(5000, 90000), host=random.choice(["botsin.space", "mastodon.social", None]))
    posts = []
    for index, at in enumerate(spread(random.randint(10, 20), ago(hours=3), ago(minutes=1))):
        headline = random.choice(["Election results in {place}", "Storm warning for {place}", "Markets close lower in {place}",
                                  "New climate report from {place}", "Crypto exchange in {place} collapses, investors lose billions",
                                  "Police in {place} warn of phone scam calls", "Football: late winner for {place}",
                                  "{place} parliament debates budget", "Train strike in {place} on {day}"]).format(
            place=random.choice(["Berlin", "Madrid", "Lyon", "Osaka", "Jakarta", "Leeds", "Bavaria", "Catalonia", "Hokkaido"]),
            day=random.choice(["Monday", "Tuesday", "Friday"]))
        url = f"https://www.{site}/{random.choice(['news', 'article', 'politik', 'world'])}/{random.randint(100000, 999999)}"
        posts.append(status(acc, paragraphs(f"{headline} {link(url)}"), at=at, lang=lang, card_url=url, visibility="unlisted"))
    return finish(benign_record("news_bot", lang, acc), posts)


JOURNALIST_TEXTS = [
    "Spam wave today: fresh accounts posting an image, an invite link and two random mentions. Mods, check your sign-ups.",
    "Reporting on the 'free followers' sellers flooding replies. Has anyone tracked where the payments go?",
    "Wrote about the fake Coinbase support numbers appearing in replies {link}",
    "The 'slot gacor' gambling spam is hitting Indonesian instances hard, story {link}",
    "Thread on how pig-butchering crypto scams start with a 'hi' DM 🧵",
]


def journalist(lang: str) -> dict:
    acc, posts = ordinary_account("en", fields=[("Newsroom", link(f"https://www.{random.choice(['wired.com', 'heise.de', 'theverge.com', '404media.co'])}/author/x"))])
    acc["note"] = paragraphs("Tech reporter. Signal for tips.")
    for at in spread(random.randint(3, 7), ago(days=7), ago(hours=1)):
        text = random.choice(JOURNALIST_TEXTS).format(link=link(f"https://www.404media.co/{random.randint(1000, 9999)}"))
        posts.append(status(acc, paragraphs(text), at=at, lang="en"))
    return finish(benign_record("journalist", "en", acc), posts)


INTRO_PARTS = {
    "en": (["Hi everyone!", "Hello Mastodon 👋", "Hey fediverse,", "First post!", "Hi all,"],
           ["new here,", "I moved over from the bird site,", "I finally made an account,", "just joined,"],
           ["I'm into gardening and old synths.", "I teach maths and bake bread.", "I draw comics about cats.",
            "I work on open source maps.", "I love birding and long walks.", "nurse, runner, bad at chess."]),
    "de": (["Hallo zusammen!", "Moin!", "Servus Fediverse,", "Erster Post!"],
           ["neu hier,", "endlich auch hier,", "von Twitter rübergekommen,"],
           ["ich fotografiere gern Vögel.", "ich bin Lehrerin aus Kiel.", "ich programmiere und klettere.", "Radfahrer und Hobbykoch."]),
    "ja": (["はじめまして！", "こんにちは！", "マストドン始めました。"], ["", "新しく来ました。"],
           ["絵を描いています。", "猫と写真が好きです。", "プログラマーです。", "旅行とラーメンが好き。"]),
    "es": (["¡Hola!", "¡Buenas!", "Hola a todos,"], ["soy nueva por aquí,", "acabo de llegar,"],
           ["me gusta la fotografía.", "soy profe de historia.", "hago cerámica."]),
    "fr": (["Bonjour à tous !", "Salut le fédiverse,", "Coucou !"], ["nouvelle ici,", "je débarque,"],
           ["je dessine des BD.", "je suis bibliothécaire.", "je fais du vélo."]),
    "id": (["Halo semua!", "Hai!", "Salam kenal,"], ["baru gabung,", "akun baru,"], ["suka fotografi dan kopi.", "guru SD di Bogor.", "suka masak."]),
    "ru": (["Всем привет!", "Привет, федивёрс!"], ["я новенькая,", "только что пришёл,"], ["люблю книги и котов.", "программист из Казани."]),
    "zh": (["大家好！", "你好，长毛象！"], ["我是新来的，", "刚注册，"], ["喜欢摄影和做饭。", "是个程序员。", "喜欢爬山。"]),
    "pt": (["Olá pessoal!", "Oi!"], ["nova por aqui,", "cheguei agora,"], ["gosto de música.", "sou professora."]),
    "it": (["Ciao a tutti!", "Salve!"], ["nuovo qui,", "appena arrivata,"], ["appassionato di montagna.", "faccio il pane."]),
    "nl": (["Hoi allemaal!", "Hallo!"], ["nieuw hier,", "net begonnen,"], ["ik fiets en bak brood.", "leraar uit Gent."]),
}


EXTRAS = {
    "en": ["Based in {city}.", "Living in {city} with two cats.", "Say hi if you're into {thing}!", "Looking for people who like {thing}.",
           "Mostly posting about {thing}."],
    "de": ["Wohne in {city}.", "Sonst viel {thing}.", "Freue mich über Tipps zu {thing}."],
    "ja": ["{city}在住です。", "{thing}の話をします。"],
    "es": ["Vivo en {city}.", "Me encanta {thing}."], "fr": ["J'habite à {city}.", "Fan de {thing}."],
    "id": ["Tinggal di {city}.", "Suka {thing}."], "ru": ["Живу в городе {city}.", "Люблю {thing}."],
    "zh": ["住在{city}。", "喜欢{thing}。"], "pt": ["Moro em {city}.", "Adoro {thing}."], "it": ["Vivo a {city}.", "Amo {thing}."],
    "nl": ["Woon in {city}.", "Fan van {thing}."],
}
CITIES = ["Leeds", "Kiel", "Lyon", "Osaka", "Bogor", "Kazan", "Porto", "Gent", "Turin", "Valencia", "Graz", "Sapporo", "Malang", "Chengdu"]
THINGS = ["jazz", "3D printing", "sourdough", "linux", "football", "poetry", "houseplants", "astronomy", "manga", "running",
          "board games", "knitting", "birds", "old cameras", "tea", "history"]


def intro_text(lang: str) -> str:
    greeting, arrival, about = INTRO_PARTS[lang]
    extra = random.choice(EXTRAS[lang]).format(city=random.choice(CITIES), thing=random.choice(THINGS))
    parts = [random.choice(greeting), random.choice(arrival), random.choice(about), extra]
    if random.random() < 0.4:
        parts.insert(3, random.choice(EXTRAS[lang]).format(city=random.choice(CITIES), thing=random.choice(THINGS)))
    return " ".join(part for part in parts if part)


def new_user_intro(lang: str) -> dict:
    username = human_username(lang)
    acc = account(username, created=ago(hours=random.uniform(0.5, 40)), display_name=random.choice([username.title(), ""]),
                  note=paragraphs(random.choice(["", "hello!", "photos, books"])), followers=random.randint(0, 15),
                  following=random.randint(0, 40), default_avatar=random.random() < 0.5,
                  host=random.choice([None, None, *OPEN_SERVERS]))
    posts = []
    tag = random.choice(["introduction", "Introductions", "neuhier", "自己紹介", "nouveauici"])
    for index, at in enumerate(spread(random.randint(1, 4), ago(hours=0.4), ago(minutes=1))):
        if index == 0:
            text = f"{intro_text(lang)} {hashtag(tag)}"
            media = [image(random.random() < 0.5)] if random.random() < 0.5 else []
            posts.append(status(acc, paragraphs(text), at=at, lang=lang, tags=[tag], media=media))
        else:
            friends = [user() for _ in range(random.randint(1, 2))]
            text = " ".join(mention(f) for f in friends) + " " + random.choice(
                ["thanks for the welcome!", "hi! found you through the intro tag", "thank you 😊", "danke!", "ありがとう！"])
            posts.append(status(acc, paragraphs(text), at=at, lang=lang, mentions=friends, reply_to=friends[0]))
    return finish(benign_record("new_user_intro", lang, acc), posts)


def cafe(lang: str) -> dict:
    phone = random.choice(["+49 30 1234567", "030 98765432", "+34 912 345 678", "+33 1 42 68 53 00", "(555) 010-4477", "03-1234-5678"])
    name = random.choice(["Café Morgenrot", "Kaffeehaus 24", "Café de la Gare", "Bar El Rincón", "喫茶ひだまり", "Bakery on 5th"])
    acc = account(name.lower().replace(" ", "")[:12].replace("é", "e"), created=ago(days=random.uniform(30, 900)),
                  display_name=random.choice([f"{name} ☕ {phone}", name, f"{name} · {phone}"]),
                  note=paragraphs(f"Open Tue-Sun 8-18. Reservations: {phone}"), followers=random.randint(20, 900),
                  following=random.randint(10, 200), statuses=random.randint(40, 900), fields=[("Phone", phone), ("Web", link("https://cafe.example/"))])
    posts = []
    for at in spread(random.randint(2, 6), ago(days=10), ago(hours=1)):
        text = random.choice(["Fresh cinnamon rolls today! Call {phone} to reserve.", "Closed Monday for the holiday.",
                              "Live music on Friday, tables: {phone}", "New autumn menu is here 🍂"]).format(phone=phone)
        posts.append(status(acc, paragraphs(text), at=at, lang=lang, media=[image(random.random() < 0.4)] if random.random() < 0.5 else []))
    return finish(benign_record("cafe", lang, acc), posts)


def community_invite(lang: str) -> dict:
    """A long-standing community account linking its Discord or Telegram group."""
    invite = random.choice(["https://discord.gg/" + "".join(random.choices(string.ascii_letters, k=8)),
                            "https://t.me/" + human_username(lang) + "_club", "https://matrix.to/#/#club:matrix.org"])
    acc, posts = ordinary_account(lang, fields=[("Chat", link(invite))])
    acc["note"] = paragraphs(random.choice(["Local Linux user group.", "Board game night organisers.", "Open source game project."]))
    for at in spread(random.randint(2, 6), ago(days=14), ago(hours=1)):
        text = random.choice(["Meetup on Thursday, details in our chat {link}", "Release notes are up.", "Thanks for coming yesterday!",
                              "Join the discussion {link}"]).format(link=link(invite))
        posts.append(status(acc, paragraphs(text), at=at, lang=lang))
    return finish(benign_record("community_invite", lang, acc), posts)


def reply_guy(lang: str) -> dict:
    """Someone who mostly replies with mentions, short texts included."""
    acc, posts = ordinary_account(lang)
    for at in spread(random.randint(3, 9), ago(days=3), ago(minutes=5)):
        friends = [user() for _ in range(random.randint(1, 3))]
        text = " ".join(mention(f) for f in friends) + " " + random.choice(["hi!", "haha yes", "congrats!!", "thank you", "same here",
                                                                           "good point", "👍", "ohayo", "hola!", "see you there"])
        posts.append(status(acc, paragraphs(text), at=at, lang=lang, mentions=friends, reply_to=friends[0]))
    return finish(benign_record("reply_guy", lang, acc), posts)


def pharmacist(lang: str) -> dict:
    acc, posts = ordinary_account("en")
    acc["note"] = paragraphs("Pharmacist. Not medical advice.")
    for at in spread(random.randint(2, 5), ago(days=12), ago(hours=1)):
        text = random.choice(["Never buy tramadol or xanax 'without prescription' from online shops, they are fake and dangerous.",
                              "Generic sildenafil (Viagra) prices dropped a lot, ask your pharmacist.",
                              "Shortage of adderall again this month. Talk to your doctor about alternatives.",
                              random.choice(ORDINARY["en"])])
        posts.append(status(acc, paragraphs(text), at=at, lang="en"))
    return finish(benign_record("pharmacist", "en", acc), posts)


def support_account(lang: str) -> dict:
    """A real company's support account: old, followed, answering with a phone number."""
    brand = random.choice(["Deutsche Bahn", "Framasoft", "Fairphone", "Mozilla", "Proton", "Tuta"])
    acc = account(brand.lower().replace(" ", "") + "_help", created=ago(days=random.uniform(400, 2500)), display_name=f"{brand} Support",
                  note=paragraphs(f"Official support account of {brand}."), followers=random.randint(2000, 80000),
                  following=random.randint(0, 50), statuses=random.randint(1000, 20000), host=random.choice(HOSTS))
    posts = []
    for at in spread(random.randint(3, 6), ago(days=3), ago(hours=1)):
        friend = user()
        text = f"{mention(friend)} " + random.choice(["Sorry about that! Please call our hotline +49 30 2970 or open a ticket.",
                                                      "Thanks, we're looking into it.", "Fixed in the latest update, please try again.",
                                                      "Please never share your password, we will never ask for it."])
        posts.append(status(acc, paragraphs(text), at=at, lang=lang, mentions=[friend], reply_to=friend))
    return finish(benign_record("support_account", lang, acc), posts)


# -- the corpus --


def build(seed: int) -> list[dict]:
    random.seed(seed)
    waves = make_waves()
    for wave in waves:
        wave["blurhash"] = blurhash()
    records: list[dict] = []
    for _ in range(44):
        records.append(wave_invite(random.choice(waves)))
    makers = [(hi_mention, 18), (follower_selling, 14), (fake_support, 14), (dating, 14), (pharma, 12), (gambling_id, 16),
              (crypto, 30), (link_farm, 8)]
    for maker, count in makers:
        records += [maker() for _ in range(count)]
    benign = [(ordinary, 70, LANGS), (scam_warning, 22, list(WARNINGS)), (crypto_dev, 8, ["en"]), (donation, 14, LANGS),
              (artist_shortener, 14, ["en", "de", "ja", "fr", "es"]), (news_bot, 12, ["de", "es", "fr", "en", "ja", "id"]),
              (journalist, 8, ["en"]), (new_user_intro, 30, LANGS), (cafe, 10, ["de", "es", "fr", "ja", "en"]),
              (community_invite, 10, LANGS), (reply_guy, 14, LANGS), (pharmacist, 5, ["en"]), (support_account, 6, ["de", "en", "fr"])]
    for maker, count, langs in benign:
        records += [maker(random.choice(langs)) if maker not in (crypto_dev, journalist) else maker(*([] if maker is crypto_dev else ["en"]))
                    for _ in range(count)]
    for record in records:
        record["id"] = record["account"]["id"]
        record["observed_at"] = iso(OBSERVED_AT)
        # Stable per account: a hash of its id, never its label, decides the split (about a third held out).
        record["split"] = "holdout" if int(hashlib.sha256(record["id"].encode()).hexdigest(), 16) % 3 == 0 else "train"
    random.shuffle(records)
    return [{key: record[key] for key in ("id", "label", "family", "kind", "lang", "split", "observed_at", "account", "statuses")
             if key in record} for record in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20240215)
    parser.add_argument("--out", type=Path, default=HERE / "labelled.jsonl")
    args = parser.parse_args()
    records = build(args.seed)
    with args.out.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    spam = sum(record["label"] == "spam" for record in records)
    print(f"{len(records)} accounts ({spam} spam, {len(records) - spam} benign), {args.out.stat().st_size / 1e6:.2f} MB -> {args.out}")


if __name__ == "__main__":
    main()
