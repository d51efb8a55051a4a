import re

from core.support import REPO
from modwatch.settings import env_names

README = (REPO / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme():
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, re.MULTILINE))
    assert env_names() <= documented, env_names() - documented


def test_ci_runs_the_readme_test_command():
    commands = re.search(r"```sh\n(.*?)```", README, re.DOTALL).group(1).splitlines()
    test_command = next(line.split("#")[0].strip() for line in commands if "test" in line)
    assert test_command in (REPO / ".ci" / "run").read_text()


def test_readme_links_point_to_existing_files():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith("http"):
            assert (REPO / target).exists(), target
