# The reference workload of the training-engine issue in PyTorch eager mode (Debian's python3-torch), as a baseline of
# `TrainingService.Bench train`: 100,000 rows x 64 features, MLP 64->128->10 (ReLU), softmax cross-entropy, Adam (lr 1e-3),
# batch 256, shuffled every epoch; features uniform in [-1, 1) seeded 42, labels uniform classes seeded 43, as
# bench/tfjs/train.js. `--iris` runs the tiny job instead (150 x 4, MLP 4->16->3, batch 16). Prints JSON lines.
import argparse
import json
import time

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iris", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    features, hidden, classes, batch = (4, 16, 3, 16) if args.iris else (64, 128, 10, 256)
    rows = 150 if args.iris else args.rows
    xs = torch.rand(rows, features, generator=torch.Generator().manual_seed(42)) * 2 - 1
    ys = torch.randint(0, classes, (rows,), generator=torch.Generator().manual_seed(43))
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    print(json.dumps({"backend": f"torch {torch.__version__}", "threads": torch.get_num_threads()}), flush=True)
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        permutation = torch.randperm(rows)
        total = 0.0
        for start in range(0, rows, batch):
            index = permutation[start:start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xs[index]), ys[index])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        ms = (time.perf_counter() - started) * 1000
        print(json.dumps({"epoch": epoch, "ms": ms, "samplesPerSecond": rows / ms * 1000, "loss": total / rows}), flush=True)


if __name__ == "__main__":
    main()
