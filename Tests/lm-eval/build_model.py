"""A tiny randomly initialised GPT-2 and a byte-level BPE tokenizer, built locally
(no model hub): what the fixture generator evaluates with the real harness.
Usage: python build_model.py OUT_DIR TEXT_FILE..."""
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

out, texts = sys.argv[1], sys.argv[2:]
lines = [line for path in texts for line in open(path, encoding="utf-8")]

tokenizer = Tokenizer(models.BPE())
tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tokenizer.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                              special_tokens=["<|endoftext|>"])
tokenizer.train_from_iterator(lines, trainer)
fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                               unk_token="<|endoftext|>", pad_token="<|endoftext|>")
fast.save_pretrained(out)

torch.manual_seed(0)
eos = fast.convert_tokens_to_ids("<|endoftext|>")
config = GPT2Config(vocab_size=len(fast), n_positions=1024, n_embd=32, n_layer=2, n_head=2,
                    bos_token_id=eos, eos_token_id=eos)
model = GPT2LMHeadModel(config)
# Larger random weights than the default init, so that the log-likelihoods differ visibly between options.
with torch.no_grad():
    for parameter in model.parameters():
        parameter.mul_(8.0)
model.save_pretrained(out)
print(f"tiny GPT-2: {sum(p.numel() for p in model.parameters())} parameters, vocabulary {len(fast)}")
