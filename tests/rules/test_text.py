from modwatch.moderation.text import MAX_FIELD_CHARS, domain_of, parse_html, plain


def test_tags_removed_entities_unescaped_paragraphs_and_breaks_become_newlines():
    parsed = parse_html("<p>Fish &amp; chips &quot;now&quot;</p><p>line one<br>line&nbsp;two</p>")
    assert parsed.text == 'Fish & chips "now"\nline one\nline two'


def test_links_are_extracted_but_mentions_and_hashtags_are_not_promoted_links():
    parsed = parse_html(
        '<p><a href="https://awoo.space/tags/awoo" class="mention hashtag">#<span>awoo</span></a> '
        '<span class="h-card"><a href="https://weirder.earth/@dzuk" class="u-url mention">@<span>dzuk</span></a></span> '
        '<a href="https://spam.example/buy" rel="nofollow"><span class="invisible">https://</span>spam.example/buy</a></p>'
    )
    assert parsed.links == ("https://spam.example/buy",)
    assert parsed.text == "#awoo @dzuk https://spam.example/buy"


def test_scripts_are_not_text_and_broken_html_does_not_raise():
    assert parse_html("<p>hi<script>scam()</script> there").text == "hi there"
    assert parse_html("<a href='x'>unclosed <b>bold").text == "unclosed bold"


def test_invisible_characters_and_fullwidth_letters_are_normalised():
    assert plain("sc\u200bam ＦＲＥＥ") == "scam FREE"


def test_missing_values_are_empty():
    assert parse_html(None).text == "" and parse_html(None).links == ()
    assert plain(None) == "" and plain(42) == ""


def test_field_length_is_capped():
    assert len(plain("a" * (MAX_FIELD_CHARS * 3))) == MAX_FIELD_CHARS


def test_domain_of():
    assert domain_of("https://WWW.Example.com/path") == "example.com"
    assert domain_of("mailto:someone@example.com") is None
    assert domain_of("http://[broken") is None
    assert domain_of(None) is None


def test_a_value_parsed_again_comes_from_memory_and_the_least_recent_is_forgotten():
    from modwatch.moderation import text

    html = '<p>Join <a href="https://spam.example/x">spam.example/x</a> today</p>'
    first = parse_html(html)
    assert parse_html(html) is first  # the stream parses a window's posts at every analysis of the account
    assert first == ("Join spam.example/x today", ("https://spam.example/x",))
    for number in range(text.PARSED_CACHE_SIZE):
        parse_html(f"<p>post {number}</p>")
    again = parse_html(html)
    assert again is not first and again == first  # bounded: parsed anew, the same
