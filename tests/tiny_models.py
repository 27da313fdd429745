"""Tiny, randomly initialised models built from configs and saved like real checkpoints (no hub, CPU).

Each builder writes a directory that the pipeline then loads through the real ``from_pretrained`` /
``load_lora_weights`` / ``load_ip_adapter`` paths. See ``shared/reference/tiny-models.md``.
"""

from __future__ import annotations

from pathlib import Path

import torch

SKIN_WORDS = [
    "diagnosis",
    "differential",
    "reasoning",
    "psoriasis",
    "eczema",
    "melanoma",
    "acne",
    "nevus",
    "tinea",
    "vitiligo",
    "urticaria",
    "rash",
    "red",
    "scaly",
    "plaque",
    "lesion",
    "skin",
    "the",
    "a",
    "is",
    "of",
    "and",
    "likely",
    "with",
    "border",
]


def clip_tokenizer():
    """A CLIP BPE tokenizer from an in-code printable-ASCII vocabulary (no merges: words → characters)."""
    from transformers import CLIPTokenizer

    alphabet = [chr(code) for code in range(33, 127)]
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *(f"{c}</w>" for c in alphabet)]
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _clip_text_config(**overrides):
    from transformers import CLIPTextConfig

    config = dict(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=1000,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        projection_dim=32,
    )
    config.update(overrides)
    return CLIPTextConfig(**config)


def _clip_vision_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )


def tiny_unet(*, in_channels: int = 4, cross_attention_dim: int = 32):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=8,
    )


def tiny_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )


def build_sd(path: Path, *, inpaint: bool = False, cross_attention_dim: int = 32) -> Path:
    """A ~1 M-parameter SD 1.x pipeline producing 64×64 images (inpainting: 9-channel UNet)."""
    from diffusers import (
        DDIMScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
    )
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = tiny_unet(in_channels=9 if inpaint else 4, cross_attention_dim=cross_attention_dim)
    vae = tiny_vae()
    text_encoder = CLIPTextModel(_clip_text_config(hidden_size=cross_attention_dim))
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline_class = StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline
    pipe = pipeline_class(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path)
    return path


def build_sdxl(path: Path) -> Path:
    """A tiny SDXL pipeline (64×64 images): two CLIP text encoders (the second with a projection: the pooled
    embedding), a UNet conditioned on their concatenated hidden states (32 + 32) and, through
    ``addition_embed_type="text_time"``, on the pooled embedding and 6 time ids: 32 + 6 × 8 = 80 inputs.
    The layout of diffusers' own SDXL pipeline tests, at our tiny sizes."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,
        cross_attention_dim=64,
        norm_num_groups=8,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
        steps_offset=1,
    )
    pipe = StableDiffusionXLPipeline(
        unet=unet,
        vae=tiny_vae(),
        text_encoder=CLIPTextModel(_clip_text_config()),
        text_encoder_2=CLIPTextModelWithProjection(_clip_text_config()),
        tokenizer=clip_tokenizer(),
        tokenizer_2=clip_tokenizer(),
        scheduler=scheduler,
    )
    pipe.save_pretrained(path)
    return path


def build_lora(path: Path, *, cross_attention_dim: int = 32, seed: int = 1) -> Path:
    """A random nonzero UNet LoRA saved with ``save_lora_weights`` → ``pytorch_lora_weights.safetensors``."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = tiny_unet(cross_attention_dim=cross_attention_dim)
    unet.requires_grad_(False)
    # init_lora_weights=False: both A and B random, so the LoRA visibly changes the output.
    unet.add_adapter(
        LoraConfig(
            r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0"]
        )
    )
    StableDiffusionPipeline.save_lora_weights(
        path,
        unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
        safe_serialization=True,
    )
    return path


def build_ip_adapter(path: Path, *, cross_attention_dim: int = 32) -> Path:
    """``ip_adapter.safetensors`` (diffusers' original-format keys) + a tiny CLIP vision encoder beside it."""
    from safetensors.torch import save_file
    from transformers import CLIPVisionModelWithProjection

    torch.manual_seed(2)
    path.mkdir(parents=True, exist_ok=True)
    vision = CLIPVisionModelWithProjection(_clip_vision_config())
    vision.save_pretrained(path / "image_encoder")
    unet = tiny_unet(cross_attention_dim=cross_attention_dim)
    tokens, embed_dim = 4, vision.config.projection_dim
    weights = {
        "image_proj.proj.weight": torch.randn(cross_attention_dim * tokens, embed_dim) * 0.1,
        "image_proj.proj.bias": torch.zeros(cross_attention_dim * tokens),
        "image_proj.norm.weight": torch.ones(cross_attention_dim),
        "image_proj.norm.bias": torch.zeros(cross_attention_dim),
    }
    key_id = 1
    channels = unet.config.block_out_channels
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        block = int(name.split(".")[1]) if not name.startswith("mid_block") else -1
        hidden = (
            channels[-1]
            if block == -1
            else list(reversed(channels))[block]
            if name.startswith("up_blocks")
            else channels[block]
        )
        weights[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross_attention_dim) * 0.5
        weights[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross_attention_dim) * 0.5
        key_id += 2
    save_file(weights, str(path / "ip_adapter.safetensors"))
    return path / "ip_adapter.safetensors"


def build_clip(path: Path) -> Path:
    """A tiny CLIPModel + CLIPProcessor for zero-shot classification."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(3)
    config = CLIPConfig(
        text_config=_clip_text_config().to_dict(),
        vision_config=_clip_vision_config().to_dict(),
        projection_dim=32,
    )
    CLIPModel(config).save_pretrained(path)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=clip_tokenizer()).save_pretrained(path)
    return path


CLASSIFIER_LABELS = ("Psoriasis", "Atopic dermatitis", "Seborrheic dermatitis", "Melanoma", "mole")


def build_image_classifier(path: Path, labels: tuple[str, ...] = CLASSIFIER_LABELS) -> Path:
    """A tiny ViT image classifier whose ``id2label`` names conditions (some outside the taxonomy)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(4)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
    )
    ViTForImageClassification(config).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() }}: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n"
    "{% else %}{{ item['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def build_llava(path: Path) -> Path:
    """A tiny LLaVA (CLIP vision + 2-layer Llama) with a word-level tokenizer and a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    specials = ["<unk>", "<pad>", "<s>", "</s>", "<image>"]
    words = [*specials, "user", "assistant", ":", ".", ",", *SKIN_WORDS]
    vocab = {word: index for index, word in enumerate(dict.fromkeys(words))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    torch.manual_seed(4)
    vision = _clip_vision_config()
    text = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=len(vocab),
        max_position_embeddings=256,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=1,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=vocab["<image>"],
        projector_hidden_act="gelu",
        vision_feature_layer=-1,
    )
    LlavaForConditionalGeneration(config).save_pretrained(path)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=vision.patch_size,
        vision_feature_select_strategy="default",
        chat_template=LLAVA_CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    ).save_pretrained(path)
    return path


def build_grounding_dino(path: Path) -> Path:
    """A tiny GroundingDINO (Swin backbone, 1-layer BERT text encoder) with a word-level BERT vocabulary."""
    from transformers import (
        BertConfig,
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    path.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *SKIN_WORDS]
    (path / "vocab.txt").write_text("\n".join(dict.fromkeys(words)) + "\n")
    torch.manual_seed(5)
    backbone = SwinConfig(
        embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=4, image_size=64, out_indices=[1, 2]
    )
    text = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # the box heads of layers ≥ 1 are tied to layer 0's: one layer leaves nothing to tie
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_queries=10,
        num_feature_levels=2,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=32,
    )
    GroundingDinoForObjectDetection(config).save_pretrained(path)
    GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 64}),
        tokenizer=BertTokenizerFast(vocab_file=str(path / "vocab.txt")),
    ).save_pretrained(path)
    return path


def build_sam(path: Path) -> Path:
    """A tiny SAM: 1-layer ViT on 64×64 inputs, 32-wide prompt encoder and mask decoder."""
    from transformers import (
        SamConfig,
        SamImageProcessor,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    torch.manual_seed(6)
    vision = SamVisionConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=64,
        patch_size=16,
        output_channels=32,
        mlp_dim=64,
        global_attn_indexes=[0],
        window_size=0,
        num_pos_feats=16,  # 2 × 16 = the prompt encoder's width
    )
    prompt = SamPromptEncoderConfig(hidden_size=32, image_size=64, patch_size=16, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_dim=64, iou_head_hidden_dim=32
    )
    SamModel(
        SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    ).save_pretrained(path)
    SamProcessor(
        image_processor=SamImageProcessor(
            size={"longest_edge": 64}, pad_size={"height": 64, "width": 64}, mask_size={"longest_edge": 64}
        )
    ).save_pretrained(path)
    return path
