"""Scrapy settings of the crawl project: the careful-crawler defaults.

stages/crawl.py (crawlers.runner) overrides the values that params.yaml `crawl` sets, points CRAWL_STATE_DIR
at `.crawl_state/<source>/`, and in snapshot mode installs crawlers.snapshot.SnapshotDownloadHandler for
http and https. `scrapy crawl <source>` with these defaults crawls the live site (for debugging; only the
stage assembles data/raw/<source>/).
"""

BOT_NAME = "carremoval"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"

# Politeness.
USER_AGENT = "carremoval-dataset-crawler/0.1 (research; car-removal training data)"
ROBOTSTXT_OBEY = True
DOWNLOAD_DELAY = 1.0                 # per download slot, i.e. per host; robots.txt Crawl-delay raises it
DOWNLOAD_DELAY_JITTER = 0.0          # delays are floors (Crawl-delay), so no random shortening
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False

# Limits.
DOWNLOAD_MAXSIZE = 20_000_000        # bytes; the snapshot handler enforces it too
DOWNLOAD_TIMEOUT = 30
RETRY_TIMES = 2
IMAGE_MIN_SIDE = 100                 # pixels, shorter side
IMAGE_MAX_PIXELS = 50_000_000        # decompression-bomb guard, checked before decoding

# Our components.
CRAWL_STATE_DIR = ".crawl_state/scrapy"
SNAPSHOT_DIR = None
SNAPSHOT_ACCESS_LOG = None
CRAWL_PROGRESS = True
DOWNLOADER_MIDDLEWARES = {
    "crawlers.middlewares.CrawlDelayMiddleware": 110,   # after RobotsTxtMiddleware (100)
    "crawlers.middlewares.ResumeMiddleware": 120,
}
ITEM_PIPELINES = {
    "crawlers.pipelines.ImagePipeline": 100,
    "crawlers.pipelines.CrawlLogPipeline": 900,
}
EXTENSIONS = {
    "crawlers.progress.CrawlProgress": 500,
}
LOG_LEVEL = "WARNING"
