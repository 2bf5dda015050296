"""The demo institution used by the demo platform, the sample generator, tests and benchmarks.

Its organID is a syntactically valid USCC (GB 32100 check digit ``R``) that belongs to no real
institution; everything generated for it is fictitious.
"""

from __future__ import annotations

from typing import Final

DEMO_ORG_CODE: Final = "12130000MB1A2B3C4R"
DEMO_ORG_NAME: Final = "河北省互联网医疗示范医院"
DEMO_INTERNET_NAME: Final = "河北省互联网医疗示范医院互联网医院"
