"""ref_math.py - the layer math both PyTorch references share (vgpt_ref.py
for Vision-GPT, hf_ref.py for the Hugging Face ViT-GPT2 family): written
out from the definitions, not taken from torch.nn, so each reference states
its model in full."""
import math

import torch


def layer_norm(x, w, b, eps):
    # biased variance, like torch.nn.LayerNorm and the GPT-2 LayerNorm
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_erf(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def gelu_tanh(x):
    # GPT-2's "gelu_new"
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def split_heads(x, H):
    # [B,T,H*D] -> [B,H,T,D]
    B, T, HD = x.shape
    return x.view(B, T, H, HD // H).transpose(1, 2)


def attend(q, k, v, causal):
    # q [B,H,Tq,D], k/v [B,H,Tk,D] -> [B,Tq,H*D]; causal: query i sits at
    # absolute position Tk-Tq+i and sees keys 0..that position
    D = q.shape[-1]
    s = q @ k.transpose(-1, -2) / math.sqrt(D)
    if causal:
        Tq, Tk = q.shape[2], k.shape[2]
        i = torch.arange(Tq).view(-1, 1) + (Tk - Tq)
        s = s.masked_fill(torch.arange(Tk).view(1, -1) > i, float("-inf"))
    a = torch.softmax(s, dim=-1) @ v
    B, H, Tq, D = a.shape
    return a.transpose(1, 2).reshape(B, Tq, H * D)


def attention(q, k, v, H, causal):
    # q [B,Tq,W], k/v [B,Tk,W] -> [B,Tq,W], H heads side by side in W
    return attend(split_heads(q, H), split_heads(k, H), split_heads(v, H), causal)
