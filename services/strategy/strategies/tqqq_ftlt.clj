;; TQQQ For The Long Term (ALCHEMISER.md, "TQQQ FTLT").
;;
;; Bull (SPY above its 200-day SMA): TQQQ RSI(10) > 79 -> UVXY; SPXL RSI(10) > 80 -> UVXY;
;;   XLK RSI(10) > KMLM RSI(10) -> TQQQ else SQQQ.
;; Bear: TQQQ RSI(10) < 31 -> TECL; SPY RSI(10) < 30 -> UPRO;
;;   TQQQ below its 20-day SMA -> the higher RSI(10) of TLT and the shorting group
;;   (SQQQ if XLK RSI(10) < KMLM RSI(10) else TLT), the group scored by its own returns;
;;   else SQQQ if SQQQ RSI(10) < 31 else TQQQ.
(defsymphony
 "TQQQ FTLT"
 {:asset-class "EQUITIES", :rebalance-frequency :daily}
 (if (> (current-price "SPY") (moving-average-price "SPY" {:window 200}))
   (group "Bull"
          [(if (> (rsi "TQQQ" {:window 10}) 79)
             (asset "UVXY")
             (if (> (rsi "SPXL" {:window 10}) 80)
               (asset "UVXY")
               (if (> (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))
                 (asset "TQQQ")
                 (asset "SQQQ"))))])
   (group "Bear"
          [(if (< (rsi "TQQQ" {:window 10}) 31)
             (asset "TECL")
             (if (< (rsi "SPY" {:window 10}) 30)
               (asset "UPRO")
               (if (< (current-price "TQQQ") (moving-average-price "TQQQ" {:window 20}))
                 (filter (rsi {:window 10})
                         (select-top 1)
                         [(asset "TLT")
                          (group "Shorting"
                                 [(if (< (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))
                                    (asset "SQQQ")
                                    (asset "TLT"))])])
                 (if (< (rsi "SQQQ" {:window 10}) 31)
                   (asset "SQQQ")
                   (asset "TQQQ")))))])))
