import sys
from pathlib import Path

# Tests import the package from the checkout as `plugin`, like the root executable does.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
