"""Every symbol of the demo dataset and how it is made (used by build_demo_dataset.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from demo_series import Moves, Recipe, Sources, combine, splice


def build_recipes(src: Sources, gauss: Callable[[str], Callable[[], float]]) -> list[Recipe]:
    """Every output symbol, real indexes first, then the strategy symbols alphabetically."""
    days = src.days
    spx, ndx = src.index_moves("^GSPC"), src.index_moves("^IXIC")
    spx_r, ndx_r = list(spx.close), list(ndx.close)
    gspc, ixic = src.source("^GSPC"), src.source("^IXIC")

    def proxy(symbol: str, source: str, method: str, moves: Moves, start: float = 50.0) -> Recipe:
        return Recipe(symbol, True, source, method, moves=moves, start=start, days=days)

    def of_returns(
        symbol: str, source: str, method: str, returns: Sequence[float], start: float = 50.0
    ) -> Recipe:
        return proxy(symbol, source, method, Moves.from_returns(returns), start)

    def noise(symbol: str, sd: float) -> tuple[Callable[[], float], float]:
        return gauss(symbol), sd

    def seeded(symbol: str) -> str:
        return f"de-meaned normal draws of random.Random(zlib.crc32(b'{symbol}'))"

    previous = src.calendar[src.first - 1]
    spy_start = src.closes["^GSPC"][previous] * 0.1
    qqq_start = src.closes["^IXIC"][previous] * 0.025
    tech = splice(
        src.partial_basket(*(f"bokeh:{t}" for t in ("AAPL", "IBM", "MSFT", "GOOG"))),
        src.basket("AAPL", "MSFT"),
    )
    tech_src = src.source(*(f"bokeh:{t}" for t in ("AAPL", "IBM", "MSFT", "GOOG")), "AAPL", "MSFT")
    financials, staples = src.basket("BAC", "JPM"), src.basket("KO", "PEP", "PG", "WMT")
    health = src.basket("JNJ", "LLY", "MRK", "PFE", "UNH")
    semis = combine((0.5, src.basket("AMD")), (0.5, ndx_r))
    value_names = ("JPM", "CVX", "XOM", "JNJ", "PFE", "PG")
    growth_names = ("AAPL", "MSFT", "HD", "UNH", "LLY")
    voov_names = ("BAC", "CVX", "GE", "JNJ", "KO", "PFE", "WMT", "XOM")
    all_stocks = sorted(n for n in src.described if "sp500_dataset" in src.described[n])
    uvxy = spx.levered(-2.5, yearly_fee=0.126)
    tlt = combine((-0.22, spx_r), drift=0.00025, noise=noise("TLT", 0.0085))
    kmlm_sign = src.momentum_sign("^GSPC", 60)
    trend = [sign * r for sign, r in zip(kmlm_sign, spx_r, strict=True)]
    three = "daily-reset"

    recipes = [
        Recipe(
            "^GSPC",
            False,
            gspc,
            "S&P 500 index OHLCV as published, rounded to cents",
            real=src.indexes["^GSPC"],
            days=days,
        ),
        Recipe(
            "^IXIC",
            False,
            ixic,
            "Nasdaq Composite OHLCV as published, rounded to cents",
            real=src.indexes["^IXIC"],
            days=days,
        ),
        of_returns(
            "BIL",
            seeded("BIL"),
            "T-bill-like: N(0.004%, 0.01%) daily returns",
            combine((0.0, spx_r), drift=0.00004, noise=noise("BIL", 0.0001)),
            91.5,
        ),
        of_returns(
            "BSV",
            f"TLT proxy; {seeded('BSV')}",
            "0.12 x TLT proxy + N(0.004%, 0.04%)",
            combine((0.12, tlt), drift=0.00004, noise=noise("BSV", 0.0004)),
            78.0,
        ),
        of_returns(
            "BTAL",
            f"{gspc}; {seeded('BTAL')}",
            "anti-beta: -0.5 x ^GSPC return + N(0, 0.4%)",
            combine((-0.5, spx_r), noise=noise("BTAL", 0.004)),
            25.0,
        ),
        of_returns("BWXT", src.source("GE"), "GE daily returns", src.basket("GE")),
        of_returns(
            "EXC",
            f"{src.source('JNJ', 'KO', 'PG')}; {seeded('EXC')}",
            "defensive basket JNJ/KO/PG + N(0, 0.7%)",
            combine((1.0, src.basket("JNJ", "KO", "PG")), noise=noise("EXC", 0.007)),
        ),
        of_returns(
            "FAS",
            src.source("BAC", "JPM"),
            f"{three} 3x of BAC/JPM basket, 1%/yr fee",
            combine((3.0, financials), drift=-0.01 / 252),
            30.0,
        ),
        of_returns(
            "IEF",
            f"TLT proxy; {seeded('IEF')}",
            "0.4 x TLT proxy + N(0.005%, 0.12%)",
            combine((0.4, tlt), drift=0.00005, noise=noise("IEF", 0.0012)),
            83.0,
        ),
        of_returns(
            "IOO",
            src.source(*all_stocks),
            "equal-weight basket of 20 large US stocks",
            src.basket(*all_stocks),
            55.0,
        ),
        of_returns(
            "KMLM",
            f"{gspc}; {seeded('KMLM')}",
            "trend: 0.4 x sign(60-day ^GSPC return) x ^GSPC return + N(0.01%, 0.6%)",
            combine((0.4, trend), drift=0.0001, noise=noise("KMLM", 0.006)),
            25.0,
        ),
        of_returns(
            "LABU",
            src.source("JNJ", "LLY", "MRK", "PFE", "UNH"),
            f"{three} 3x of a JNJ/LLY/MRK/PFE/UNH basket, 1%/yr fee",
            combine((3.0, health), drift=-0.01 / 252),
        ),
        of_returns("LEU", src.source("RRC"), "RRC daily returns", src.basket("RRC"), 20.0),
        of_returns("NLR", src.source("CVX", "XOM"), "CVX/XOM basket", src.basket("CVX", "XOM")),
        of_returns(
            "OKLO",
            f"{src.source('CVX')}; {seeded('OKLO')}",
            "1.5 x CVX return + N(0, 3%)",
            combine((1.5, src.basket("CVX")), noise=noise("OKLO", 0.03)),
            10.0,
        ),
        proxy(
            "PSQ",
            ixic,
            "-1x daily-reset of ^IXIC OHLC, 0.95%/yr fee",
            ndx.levered(-1.0, 0.0095),
            60.0,
        ),
        proxy(
            "QQQ",
            ixic,
            "^IXIC OHLC x 0.025 (Composite standing in for the Nasdaq-100)",
            ndx,
            qqq_start,
        ),
        of_returns(
            "QQQE",
            f"{ixic}; {src.source('AAPL', 'MSFT', 'AMD')}",
            "0.5 x ^IXIC return + 0.5 x AAPL/MSFT/AMD basket",
            combine((0.5, ndx_r), (0.5, src.basket("AAPL", "MSFT", "AMD"))),
            20.0,
        ),
        of_returns(
            "SMR",
            f"{src.source('RRC')}; {seeded('SMR')}",
            "1.2 x RRC return + N(0, 2.5%)",
            combine((1.2, src.basket("RRC")), noise=noise("SMR", 0.025)),
            10.0,
        ),
        of_returns(
            "SOXL",
            f"{src.source('AMD')}; {ixic}",
            f"{three} 3x of (0.5 x AMD + 0.5 x ^IXIC), 1%/yr fee",
            combine((3.0, semis), drift=-0.01 / 252),
            20.0,
        ),
        proxy("SPXL", gspc, f"{three} 3x of ^GSPC OHLC, 1%/yr fee", spx.levered(3.0, 0.01), 40.0),
        proxy("SPY", gspc, "^GSPC OHLC x 0.1 (a price index: no dividends)", spx, spy_start),
        proxy(
            "SQQQ",
            ixic,
            "-3x daily-reset of ^IXIC OHLC, 0.95%/yr fee",
            ndx.levered(-3.0, 0.0095),
            60.0,
        ),
        proxy(
            "SVIX",
            gspc,
            "short-vol: 1.67 x ^GSPC OHLC moves + 8.3%/yr roll yield",
            spx.levered(2.5 / 1.5, -0.083),
            20.0,
        ),
        of_returns(
            "TECL",
            tech_src,
            f"{three} 3x of the XLK proxy, 1%/yr fee",
            combine((3.0, tech), drift=-0.01 / 252),
            20.0,
        ),
        of_returns(
            "TLT",
            f"{gspc}; {seeded('TLT')}",
            "bond-like: -0.22 x ^GSPC return + N(0.025%, 0.85%)",
            tlt,
            90.0,
        ),
        proxy(
            "TQQQ", ixic, f"{three} 3x of ^IXIC OHLC, 0.95%/yr fee", ndx.levered(3.0, 0.0095), 30.0
        ),
        proxy(
            "UPRO", gspc, f"{three} 3x of ^GSPC OHLC, 0.92%/yr fee", spx.levered(3.0, 0.0092), 30.0
        ),
        proxy("UVXY", gspc, "long-vol: -2.5 x ^GSPC OHLC moves - 12.6%/yr decay", uvxy, 60.0),
        of_returns(
            "VOOG",
            f"{src.source('MTUM')}; {src.source(*growth_names)}",
            "iShares MTUM returns from 2014-01-03, before: AAPL/MSFT/HD/UNH/LLY basket",
            splice(src.returns("MTUM"), src.basket(*growth_names)),
            60.0,
        ),
        of_returns(
            "VOOV",
            src.source(*voov_names),
            "equal-weight basket of 8 value stocks",
            src.basket(*voov_names),
            55.0,
        ),
        of_returns(
            "VOX",
            f"{gspc}; {seeded('VOX')}",
            "0.8 x ^GSPC return + N(0, 0.6%)",
            combine((0.8, spx_r), noise=noise("VOX", 0.006)),
            55.0,
        ),
        of_returns(
            "VTV",
            f"{src.source('VLUE')}; {src.source(*value_names)}",
            "iShares VLUE returns from 2014-01-03, before: JPM/CVX/XOM/JNJ/PFE/PG basket",
            splice(src.returns("VLUE"), src.basket(*value_names)),
            50.0,
        ),
        of_returns("XLF", src.source("BAC", "JPM"), "BAC/JPM basket", financials, 35.0),
        of_returns(
            "XLK",
            tech_src,
            "AAPL/IBM/MSFT/GOOG basket (bokeh) to 2013-03-01, then AAPL/MSFT (skfolio)",
            tech,
            20.0,
        ),
        of_returns(
            "XLP", src.source("KO", "PEP", "PG", "WMT"), "KO/PEP/PG/WMT basket", staples, 23.0
        ),
        of_returns("XLY", src.source("HD", "BBY"), "HD/BBY basket", src.basket("HD", "BBY"), 33.0),
    ]
    return recipes
