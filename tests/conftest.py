import sys
from pathlib import Path

from hypothesis import settings

# Tests import the package from the checkout as `plugin`, like the root executable does.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The property tests' examples: 300 each when the tests run; a fixed 40 under mutation testing
# (tests/mutation.sh passes --hypothesis-profile=mutation), where every test runs once per mutant.
settings.register_profile("tests", max_examples=300)
settings.register_profile("mutation", max_examples=40, derandomize=True)
settings.load_profile("tests")
