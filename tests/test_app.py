"""The web demo (app.py) in a real browser: headless Chromium driven by Selenium, as a person would use it.

The downloaded PNG must equal demo.py's output for the same image and options, pixel for pixel.
Skipped only where gradio, selenium or Chromium and its driver are missing (``.ci/run`` installs them).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import demo
from net.prompts import PromptTable, prompt_list
from net.recognizer import DegradationRecognizer, save_recognizer
from net.registry import create_model
from utils.image_io import read_rgb

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
gr = pytest.importorskip("gradio", reason="the web demo needs gradio: pip install -r requirements-app.txt")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium: "
                                "pip install -r requirements-app.txt")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("the browser test needs Chromium and its driver: apt-get install chromium chromium-driver",
                allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import app  # noqa: E402

START_TIMEOUT_S = 150  # importing torch, Lightning and gradio on a busy 2-core machine


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny-preset Hub folder with its prompt table and an initialised 5D recogniser."""
    root = tmp_path_factory.mktemp("app_model")
    torch.manual_seed(0)
    net = create_model("tiny")
    net.prompt_table = PromptTable(prompt_list("detailed"), torch.randn(7, 512), "test table")
    net.prompt_set = "detailed"
    net.save_pretrained(root / "hub")
    save_recognizer(root / "recognizer_5D.pt", DegradationRecognizer("5D").eval())
    return root / "hub", root / "recognizer_5D.pt"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_files, tmp_path_factory):
    """app.py serving the tiny checkpoint on a free local port -> (url, its temporary folder)."""
    hub, recognizer = model_files
    port = _free_port()
    cwd = tmp_path_factory.mktemp("app_cwd")  # no quickstart/ here: the app makes its own stand-in examples
    process = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--ckpt", str(hub), "--recognizer",
                                str(recognizer), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
                               cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and not any("Running on" in line for line in lines):
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
    if not any("Running on" in line for line in lines):
        process.kill()
        pytest.fail("app.py did not start:\n" + "".join(lines))
    work_dir = Path(next(line for line in lines if line.startswith("temporary folder:")).split(": ", 1)[1].strip())
    yield f"http://127.0.0.1:{port}/", work_dir
    process.terminate()  # SIGTERM: stops as Ctrl-C does
    process.wait(timeout=30)
    assert not work_dir.exists(), "the app left its temporary folder behind"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver, downloads
    driver.quit()


def _photo(path: Path) -> Path:
    """A 52 x 40 photo stored sideways: EXIF orientation 6 (the app and the demo show it 40 wide, 52 high)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(path, exif=exif)
    return path


def _uploaded(name: str):
    return lambda d: d.find_elements(By.CSS_SELECTOR, f"#upload [aria-label='{name}']")


def _choose(driver, elem_id: str, value: str) -> None:
    """Pick ``value`` in a Gradio dropdown as a person does: open it, type, press Enter."""
    field = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(value, Keys.ENTER)
    WebDriverWait(driver, 10).until(lambda d: field.get_attribute("value") == value)


def _restore(driver, wait: WebDriverWait, previous: str | None) -> str:
    """Press Restore; wait for a new status line (and with a result, a new download link); -> the status."""
    before = driver.find_element(By.CSS_SELECTOR, "#status").text
    driver.find_element(By.CSS_SELECTOR, "#restore").click()

    def done(d):
        status = d.find_element(By.CSS_SELECTOR, "#status").text
        if status == before or "processing" in status:
            return False
        links = d.find_elements(By.CSS_SELECTOR, "#download a.download-link")
        new_link = bool(links) and links[0].get_attribute("href") != previous
        return status if ("Cannot restore" in status or (new_link and "Restored" in status)) else False

    return wait.until(done)


def _download(driver, wait: WebDriverWait, downloads: Path) -> tuple[np.ndarray, str]:
    link = driver.find_element(By.CSS_SELECTOR, "#download a.download-link")
    for old in downloads.iterdir():
        old.unlink()
    link.click()
    path = wait.until(lambda d: next((p for p in downloads.iterdir() if p.suffix == ".png"), False))
    return read_rgb(path), link.get_attribute("href")


def _demo_output(hub: Path, photo: Path, out: Path, *flags: str) -> np.ndarray:
    assert demo.main(["--ckpt", str(hub), "--input", str(photo), "--output_dir", str(out), "--device", "cpu",
                      *flags]) == 0
    return read_rgb(out / f"{photo.stem}.png")


def test_the_page_restores_as_demo_py_does_and_reports_bad_files(server, browser, model_files, tmp_path):
    url, work_dir = server
    driver, downloads = browser
    hub, recognizer = model_files
    photo = _photo(tmp_path / "photo.png")
    wait = WebDriverWait(driver, 60)
    driver.get(url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
    assert "Stand-in test images" in driver.page_source
    driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(photo))
    wait.until(_uploaded("photo.png"))

    # auto: the recogniser picks; its probabilities are shown; the PNG equals demo.py --degradation auto.
    _choose(driver, "degradation", "auto")
    status = _restore(driver, wait, None)
    assert "Restored" in status and "40 x 52" in status, status
    assert "noise25" in driver.find_element(By.CSS_SELECTOR, "#probabilities").text
    restored, href = _download(driver, wait, downloads)
    expected = _demo_output(hub, photo, tmp_path / "auto", "--degradation", "auto", "--recognizer", str(recognizer))
    assert restored.shape == (52, 40, 3) and np.array_equal(restored, expected)

    # a named degradation, tiled: equal to demo.py --degradation rain --tile 16 --tile_overlap 8.
    _choose(driver, "degradation", "rain")
    driver.find_element(By.XPATH, "//*[@id='tiling']//label[normalize-space()='on']").click()
    for elem_id, value in (("tile", "16"), ("overlap", "8")):
        field = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(value, Keys.TAB)
    status = _restore(driver, wait, href)
    assert "Restored rain" in status, status
    assert "tiles of 16" in status, status
    driver.save_screenshot(str(tmp_path / "app.png"))
    restored, href = _download(driver, wait, downloads)
    expected = _demo_output(hub, photo, tmp_path / "rain", "--degradation", "rain", "--tile", "16",
                            "--tile_overlap", "8")
    assert np.array_equal(restored, expected)

    # a broken file: a message in the page, no traceback ...
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not an image")
    driver.find_element(By.CSS_SELECTOR, "#upload button[aria-label='Clear']").click()
    driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(broken))
    wait.until(_uploaded("broken.png"))
    status = _restore(driver, wait, href)
    assert "Cannot restore" in status and "cannot read broken.png as an image" in status, status
    assert "Traceback" not in driver.page_source

    # ... and the app goes on serving; the page fetched nothing from anywhere but the app.
    driver.find_element(By.CSS_SELECTOR, "#upload button[aria-label='Clear']").click()
    driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(photo))
    wait.until(_uploaded("photo.png"))
    assert "Restored rain" in _restore(driver, wait, None)
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(u.startswith((url, "data:", "blob:")) for u in fetched), fetched
    assert not list(tmp_path.glob("*.png.*")) and sorted(p.name for p in tmp_path.glob("*.png")) == [
        "app.png", "broken.png", "photo.png"]  # nothing written next to the user's files
    assert work_dir.is_dir()


def test_refusals_are_one_line_messages(model_files, tmp_path, monkeypatch, capsys):
    hub, _ = model_files
    monkeypatch.chdir(tmp_path)  # no quickstart/checkpoints/last.ckpt here
    assert app.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "python quickstart.py" in err and "--ckpt" in err
    args = app.build_parser().parse_args(["--ckpt", str(hub), "--device", "cpu"])
    handler = app.App(app.open_restorer(args), tmp_path / "results")
    big = tmp_path / "big.png"
    Image.new("RGB", (4097, 4096)).save(big)
    small = tmp_path / "small.png"
    Image.new("RGB", (24, 16)).save(small)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    for upload, degradation, message in [(big, "rain", "up to 16,777,216 pixels"),
                                         (text, "rain", "cannot read notes.txt as an image"),
                                         (small, "auto", "auto needs a degradation recogniser"),
                                         (small, "sleet", "unknown degradation 'sleet'")]:
        pair, probabilities, png, status = handler.restore(str(upload), degradation, "auto", 512, 32)
        assert pair is None and png is None and "Cannot restore" in status and message in status, status
    assert not (tmp_path / "results").exists()
