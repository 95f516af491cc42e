"""The records of the paper: its five datasets, seven tasks and two settings (docs/protocol.md sections 2-5).

Importing this module registers them (:mod:`utils.tasks` does, so every user of the records sees
them). The names of synthesis functions, online degradations, finders and augmentations are those
``data/`` and ``engine/`` register.
"""

from __future__ import annotations

from utils.records import (
    Dataset,
    Download,
    Layout,
    Online,
    Setting,
    StandIn,
    Task,
    haze_partner,
    rain_partner,
    register_dataset,
    register_setting,
    register_task,
    same_name,
)

# BioIR's repository prints no table and its paper's tables were not available: its rows are those of
# DACG-IR (arXiv 2605.01236, Tables I and II, row "BioIR-L (NeurIPS'25)"), a secondary source.
BIOIR_SOURCE = "DACG-IR, arXiv 2605.01236"

for _dataset in (
    Dataset(
        "denoise",
        train=Layout(None, "", name_list="denoise.txt", example="*", pairs_by="noise is synthetic"),
        test=Layout(None, "bsd68", example="*", pairs_by="noise is synthetic"),
        train_folder="Train/Denoise", test_folder="test/denoise",
        train_source="BSD400 + WED", test_source="CBSD68",
        stand_in=StandIn("{i:05d}.png", "{i:04d}.png", scenes=(8, 4), name_list_folder="noisy",
                         description="none for denoising (the loader adds the noise)"),
        test_size=68,
        train_size=5144,
        downloads=(
            Download("wed", "Waterloo Exploration Database (exploration_database_and_code: pristine_images/*.bmp, "
                     "4744)", ("train",)),
            Download("bsd400", "BSD400 = BSDS500 images/train + images/test (BSR_bsds500.tgz: "
                     "BSR/BSDS500/data/images/, 400 .jpg), or a folder of those 400 images", ("train",)),
            Download("cbsd68", "CBSD68 (CBSD68/original_png/*.png, 68)", ("test",)),
        ),
    ),
    Dataset(
        "derain",
        train=Layout("rainy", "gt", rain_partner, "rainTrain.txt", listed_with_folder=True, example="rain-N.png",
                     pairs_by="N"),
        test=Layout("Rain100L/input", "Rain100L/target", rain_partner, example="rain-N.png", pairs_by="N"),
        train_folder="Train/Derain", test_folder="test/derain",
        train_source="Rain100L train", test_source="Rain100L",
        stand_in=StandIn("rain-{i}.png", "rain-{i:03d}.png", "rain", name_list_folder="rainy",
                         description="screen-blended motion-blurred rain streaks (Rain100L names)"),
        test_size=100,
        train_size=200,
        downloads=(
            Download("rain100l_train", "Rain100L training set RainTrainL (JORDER / PReNet: rain-N.png + "
                     "norain-N.png, 200)", ("train",)),
            Download("rain100l_test", "Rain100L test set (rain-NNN.png + norain-NNN.png, or rain/ + norain/, 100)",
                     ("test",)),
        ),
    ),
    Dataset(
        "dehaze",
        train=Layout("synthetic", "original", haze_partner(None), "hazy_outside.txt", listed_with_folder=True,
                     example="ID_A_B.jpg", pairs_by="ID before the first `_`, same extension"),
        test=Layout("input", "target", haze_partner(".png"), example="ID_A_B.jpg", pairs_by="ID"),
        train_folder="Train/Dehaze", test_folder="test/dehaze",
        train_source="RESIDE OTS", test_source="SOTS outdoor",
        stand_in=StandIn("{i:04d}_{tag}.jpg", "{i:04d}_{tag}.jpg", "haze", versions=(2, 1),
                         name_list_folder="hazy",
                         description="haze by I = J t + A (1 - t), t = exp(-beta d), on a smooth synthetic depth "
                         "map, A and beta in the names (RESIDE names ID_A_B.jpg, 2 hazy versions per training "
                         "scene)"),
        test_size=500,
        train_size=72135,
        downloads=(
            Download("reside_ots", "RESIDE-beta OTS (haze/part1..part4/ID_A_B.jpg + clear/ID.jpg)", ("train",)),
            Download("sots_outdoor", "RESIDE SOTS outdoor (SOTS/outdoor/hazy/ID_A_B.jpg + gt/ID.png, 500)",
                     ("test",)),
        ),
    ),
    Dataset(
        "deblur",
        train=Layout("blur", "sharp", same_name, "train_gopro.txt"),
        test=Layout("blur", "sharp"),
        train_folder="Train/Deblur", test_folder="test/deblur",
        train_source="GoPro train", test_source="GoPro test",
        stand_in=StandIn("GOPR0001_00_{i:06d}.png", "GOPR0002_00_{i:06d}.png", "motion_blur",
                         name_list_folder="gopro", description="linear or random-walk motion blur (GoPro names)"),
        test_size=1111,
        train_size=2103,
        downloads=(
            Download("gopro", "GoPro GOPRO_Large (train|test/<SEQUENCE>/blur + sharp, 2103 + 1111)",
                     ("train", "test")),
        ),
    ),
    Dataset(
        "lowlight",
        train=Layout("low", "high", same_name, "train_lol.txt"),
        test=Layout("low", "high"),
        train_folder="Train/LowLight", test_folder="test/lowlight",
        train_source="LOL train", test_source="LOL test",
        stand_in=StandIn("{i}.png", "{i}.png", "low_light", name_list_folder="lol",
                         description="gamma darkening, scaling and noise (LOL names)"),
        test_size=15,
        train_size=485,
        downloads=(
            Download("lol", "LOL LOLdataset (our485/low + high, eval15/low + high, 485 + 15)", ("train", "test")),
        ),
    ),
):
    register_dataset(_dataset)

# The 'detailed' prompts steer the released 3D and 5D checkpoints, the 'simple' ones the 3D "simple" one.
for _task in (
    Task("denoise_15", 0, "denoise", "CBSD68 s15", aliases=("noise15",), online=Online("noise", {"sigma": 15}),
         prompts={"detailed": "Gaussian noise with a standard deviation of 15", "simple": "Noise"}),
    Task("denoise_25", 1, "denoise", "CBSD68 s25", aliases=("noise25",), online=Online("noise", {"sigma": 25}),
         prompts={"detailed": "Gaussian noise with a standard deviation of 25", "simple": "Noise"}),
    Task("denoise_50", 2, "denoise", "CBSD68 s50", aliases=("noise50",), online=Online("noise", {"sigma": 50}),
         prompts={"detailed": "Gaussian noise with a standard deviation of 50", "simple": "Noise"}),
    Task("derain", 3, "derain", "Rain100L", aliases=("rain",), recognizer_augmentation="brighten",
         prompts={"detailed": "Rain degradation with rain lines", "simple": "Rain"}),
    Task("dehaze", 4, "dehaze", "SOTS", aliases=("haze",),
         prompts={"detailed": "Hazy degradation with normal haze", "simple": "Haze"}),
    Task("deblur", 5, "deblur", "GoPro", aliases=("blur",),
         prompts={"detailed": "Blur degradation with motion blur"}),
    Task("lowlight", 6, "lowlight", "LOL",
         prompts={"detailed": "Lowlight degradation"}),
):
    register_task(_task)

register_setting(Setting(
    "3D", ("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"), val_every=2000,
    train_repeats={"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 120, "dehaze": 1},
    paper_numbers={"denoise_15": (34.14, 0.935), "denoise_25": (31.47, 0.893), "denoise_50": (28.25, 0.806),
                   "derain": (38.65, 0.982), "dehaze": (31.87, 0.980)},
    published_average=(32.88, 0.919), legacy_sigmas=(15, 25, 50),
    # PromptIR's row of DFPIR's 3D table, as in the PromptIR paper (docs/protocol.md section 7.3).
    baseline_numbers={"promptir": {"denoise_15": (33.98, 0.933), "denoise_25": (31.31, 0.888),
                                   "denoise_50": (28.06, 0.799), "derain": (36.37, 0.972),
                                   "dehaze": (30.58, 0.974), "average": (32.06, 0.913)},
                      "bioir": {"denoise_15": (34.19, 0.937), "denoise_25": (31.54, 0.895),
                                "denoise_50": (28.28, 0.809), "derain": (38.63, 0.984),
                                "dehaze": (31.69, 0.981), "average": (32.87, 0.921)}},
    baseline_sources={"bioir": BIOIR_SOURCE},
))
register_setting(Setting(
    "5D", ("dehaze", "derain", "denoise_25", "deblur", "lowlight"), val_every=3000,
    train_repeats={"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 80, "dehaze": 1, "deblur": 30,
                   "lowlight": 60},
    paper_numbers={"denoise_25": (31.29, 0.889), "derain": (37.62, 0.978), "dehaze": (31.64, 0.979),
                   "deblur": (28.82, 0.873), "lowlight": (23.82, 0.843)},
    published_average=(30.64, 0.913), legacy_sigmas=(25,),
    # No 5D PromptIR row is published (docs/protocol.md section 7.3).
    baseline_numbers={"bioir": {"denoise_25": (31.52, 0.894), "derain": (38.75, 0.985), "dehaze": (31.77, 0.981),
                                "deblur": (29.61, 0.889), "lowlight": (23.29, 0.862), "average": (30.99, 0.922)}},
    baseline_sources={"bioir": BIOIR_SOURCE},
))
